"""A reference model of the circuit breaker, written apart from the runtime, for exact comparison.

It replays a trace of breaker events in virtual time and yields every decision and transition.
Unlike the runtime it keeps the whole history and recomputes everything from it at each event
(no counters, no pruning, no locks): slow, and simple enough to check by eye against the rules
of issue 12 section 2.

The rules, as this model reads them (README, "Circuit breaker"):

1. Outcomes: ``success``; ``failure`` (transient errors, 401/403); ``ignored`` (400/404/422, non-SDK
   errors); an attempt may also be ``abandoned``. ``ignored``/``abandoned`` never change counts.
2. Closed: a failure opens it when the failures since the last success (ignoring ``ignored``) reach
   ``consecutive_failures``, or when among the counted outcomes that ended at ``t > now - window``
   (since it last closed or opened) at least ``minimum_calls`` ended and failures/calls reaches
   ``failure_ratio``. Only failures trigger this check.
3. The n-th rule-made opening since the breaker last closed (n = 0, 1, ...) lasts
   ``min(break_duration * 2**n, max_break_duration)``. A ``Retry-After`` above ``retry_after_cap``
   on a failure makes the break at least that long, and opens the breaker by itself (not counted
   as a rule-made opening) when no rule does; on an open breaker it extends the break if it ends
   later.
4. Open: admissions are skipped until ``until``; from then the first admission makes it half-open.
5. Half-open: an admission gets the probe unless a probe holds an unexpired lease (``probe_lease``
   seconds from its grant). The probe's success closes it (history, run and doubling cleared); its
   failure reopens it by rule; its ``ignored``/``abandoned`` outcome frees the lease. Outcomes of
   other tickets are ignored, except a Retry-After opening (rule 3).
6. Last resort over skipped keys: the first one that is closed now is tried as it is; otherwise the
   one whose break ends soonest (first on ties) is made half-open and its probe given to the caller
   (any earlier lease is lost).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["success", "failure", "ignored", "abandoned"]


@dataclass(frozen=True)
class BreakerConfig:
    consecutive_failures: int = 5
    failure_ratio: float = 0.5
    minimum_calls: int = 20
    window: float = 30.0
    break_duration: float = 30.0
    max_break_duration: float = 300.0
    retry_after_cap: float = math.inf
    probe_lease: float = 300.0


@dataclass(frozen=True)
class Admit:
    """A call asks for ``key`` before its first attempt on it; ``ticket`` names that admission."""

    at: float
    key: str
    ticket: int


@dataclass(frozen=True)
class LastResort:
    at: float
    skipped: tuple[str, ...]
    ticket: int


@dataclass(frozen=True)
class Outcome:
    at: float
    key: str
    ticket: int
    kind: Kind
    retry_after: float | None = None


@dataclass(frozen=True)
class IsClosed:
    """``allow_retry`` / ``readmit``: may the call go on with ``key``?"""

    at: float
    key: str


Event = Admit | LastResort | Outcome | IsClosed


@dataclass(frozen=True)
class Decision:
    """What the model answered to an event: ``admit``/``skip``/``probe`` (with the chosen key for a
    last resort, or ``none``), or ``closed``/``not_closed`` for a query."""

    at: float
    key: str | None
    answer: str


@dataclass(frozen=True)
class Change:
    """A transition: ``open`` (with ``until``), ``half_open`` or ``closed``."""

    at: float
    key: str
    to: str
    until: float | None = None


@dataclass
class _Model:
    mode: str = "closed"
    history: list[tuple[float, bool]] = field(default_factory=list)  # (end time, failed)
    rule_openings: int = 0
    until: float = 0.0
    probe: int | None = None
    probe_expires: float = -math.inf


class ReferenceBreaker:
    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self.models: dict[str, _Model] = {}

    def _model(self, key: str) -> _Model:
        return self.models.setdefault(key, _Model())

    def replay(self, events: Iterable[Event]) -> Iterator[Decision | Change]:
        for event in events:
            yield from self.step(event)

    def step(self, event: Event) -> list[Decision | Change]:
        out: list[Decision | Change] = []
        if isinstance(event, Admit):
            out.extend(self._admit(event.at, event.key, event.ticket))
        elif isinstance(event, LastResort):
            out.extend(self._last_resort(event))
        elif isinstance(event, Outcome):
            out.extend(self._outcome(event))
        else:
            closed = self._model(event.key).mode == "closed"
            out.append(Decision(event.at, event.key, "closed" if closed else "not_closed"))
        return out

    # -- events ----------------------------------------------------------------------------------

    def _admit(self, at: float, key: str, ticket: int) -> list[Decision | Change]:
        m = self._model(key)
        out: list[Decision | Change] = []
        if m.mode == "closed":
            return [Decision(at, key, "admit")]
        if m.mode == "open":
            if at < m.until:
                return [Decision(at, key, "skip")]
            m.mode = "half_open"
            out.append(Change(at, key, "half_open"))
        if m.probe is not None and at < m.probe_expires:
            out.append(Decision(at, key, "skip"))
        else:
            m.probe, m.probe_expires = ticket, at + self.config.probe_lease
            out.append(Decision(at, key, "probe"))
        return out

    def _last_resort(self, event: LastResort) -> list[Decision | Change]:
        if not event.skipped:
            return [Decision(event.at, None, "none")]
        for key in event.skipped:
            if self._model(key).mode == "closed":
                return [Decision(event.at, key, "admit")]
        best = event.skipped[0]
        for key in event.skipped[1:]:
            if self._model(key).until < self._model(best).until:
                best = key
        m = self._model(best)
        out: list[Decision | Change] = []
        if m.mode == "open":
            m.mode = "half_open"
            out.append(Change(event.at, best, "half_open"))
        m.probe, m.probe_expires = event.ticket, event.at + self.config.probe_lease
        out.append(Decision(event.at, best, "probe"))
        return out

    def _outcome(self, event: Outcome) -> list[Decision | Change]:
        cfg = self.config
        m = self._model(event.key)
        is_probe = m.mode == "half_open" and m.probe is not None and m.probe == event.ticket
        if event.kind in ("ignored", "abandoned"):
            if is_probe:
                m.probe = None
            return []
        long_wait = (
            event.retry_after
            if event.retry_after is not None and event.retry_after > cfg.retry_after_cap
            else None
        )
        if event.kind == "success":
            if is_probe:
                m.mode, m.history, m.rule_openings, m.probe = "closed", [], 0, None
                return [Change(event.at, event.key, "closed")]
            if m.mode == "closed":
                m.history.append((event.at, False))
            return []
        # a failure
        if is_probe:
            return [self._open(event.at, event.key, by_rule=True, long_wait=long_wait)]
        if m.mode == "closed":
            m.history.append((event.at, True))
            streak = 0
            for _, failed in reversed(m.history):
                if not failed:
                    break
                streak += 1
            recent = [failed for t, failed in m.history if t > event.at - cfg.window]
            calls, failures = len(recent), sum(recent)
            tripped = streak >= cfg.consecutive_failures or (
                calls >= cfg.minimum_calls and failures / calls >= cfg.failure_ratio
            )
            if tripped or long_wait is not None:
                return [self._open(event.at, event.key, by_rule=tripped, long_wait=long_wait)]
            return []
        if long_wait is not None and (m.mode == "half_open" or event.at + long_wait > m.until):
            return [self._open(event.at, event.key, by_rule=False, long_wait=long_wait)]
        return []

    def _open(self, at: float, key: str, *, by_rule: bool, long_wait: float | None) -> Change:
        cfg = self.config
        m = self._model(key)
        length = 0.0
        if by_rule:
            length = min(cfg.break_duration * 2.0**m.rule_openings, cfg.max_break_duration)
            m.rule_openings += 1
        if long_wait is not None:
            length = max(length, long_wait)
        until = at + length
        if m.mode == "open":
            until = max(until, m.until)
        m.mode, m.until, m.history, m.probe = "open", until, [], None
        return Change(at, key, "open", until)
