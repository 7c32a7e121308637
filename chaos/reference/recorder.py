"""Record what a runtime breaker (or retry budget) was asked and answered; check it against the reference.

:class:`BreakerRecorder` wraps the hooks of the runtime's breaker strategy (found in
``manager.strategies``) on that one instance: each hook call becomes a reference event
(:mod:`chaos.reference.breaker`) together with the runtime's answer and the transitions it reported
meanwhile. The outcome of a failed attempt is classified here, from the exception alone, by the
rules of issue 12 (not by the runtime's own classifier). :func:`disagreements` replays the events
through :class:`~chaos.reference.breaker.ReferenceBreaker` and lists every difference.
:class:`BudgetRecorder` and :func:`budget_disagreements` do the same for the retry budget.
"""

from __future__ import annotations

import email.utils
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from .breaker import (
    Admit,
    BreakerConfig,
    Change,
    Decision,
    Event,
    IsClosed,
    LastResort,
    Outcome,
    ReferenceBreaker,
)
from .budget import BudgetConfig, ReferenceBudget

#: Statuses that count against a model besides 5xx: 408, 409, 429 (retried) and 401/403 (refused).
FAILURE_STATUSES = frozenset({401, 403, 408, 409, 429})


def classify(exc: BaseException, cut_by_deadline: bool) -> str:
    """``failure`` or ``ignored``, by issue 12 section 2."""
    if cut_by_deadline and isinstance(exc, openai.APITimeoutError):
        return "ignored"
    if isinstance(exc, openai.APIConnectionError):
        return "failure"
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        return "failure" if code >= 500 or code in FAILURE_STATUSES else "ignored"
    return "ignored"


def server_wait(exc: BaseException) -> float | None:
    """The server's requested wait in seconds (``retry-after-ms``, else ``Retry-After``)."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds = float(raw) * scale
        except ValueError:
            if scale != 1.0:
                continue
            try:
                seconds = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
            except (TypeError, ValueError):
                return None
        if seconds > 0:
            return seconds
        if name == "retry-after":
            return None
    return None


@dataclass
class Step:
    """One hook call: the reference event, the runtime's answer, and the transitions it reported."""

    event: Event
    answer: str | None
    changes: list[Change] = field(default_factory=list)


class BreakerRecorder:
    """Installs itself on a runtime ``CircuitBreakerStrategy`` instance (hooks serialised)."""

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy
        self.steps: list[Step] = []
        self._tickets: dict[tuple[int, str], int] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.RLock()
        self._pending: list[Change] = []
        self._last_now = 0.0
        report: Callable[[Any], object] | None = strategy.report

        def on_transition(change: Any) -> None:
            self._pending.append(Change(change.at, change.key, change.after, change.until))
            if report is not None:
                report(change)

        strategy.report = on_transition
        original = {
            name: getattr(strategy, name)
            for name in (
                "admit",
                "last_resort",
                "attempt_succeeded",
                "attempt_failed",
                "allow_retry",
                "readmit",
                "attempt_abandoned",
            )
        }
        self.original = original

        def admit(call: Any, key: str, now: float) -> Any:
            ticket = self._ticket(call.call_id, key, fresh=True)
            return self._run(Admit(now, key, ticket), original["admit"], call, key, now)

        def last_resort(call: Any, skipped: Sequence[str], now: float) -> Any:
            with self._lock:
                self._pending = []
                chosen = original["last_resort"](call, skipped, now)
                ticket = self._ticket(call.call_id, chosen or "", fresh=True)
                event = LastResort(now, tuple(skipped), ticket)
                self.steps.append(Step(event, chosen, self._pending))
                self._last_now = now
                return chosen

        def attempt_succeeded(call: Any, key: str, now: float) -> Any:
            event = Outcome(now, key, self._ticket(call.call_id, key), "success")
            return self._run(event, original["attempt_succeeded"], call, key, now, answer=False)

        def attempt_failed(call: Any, key: str, exc: Exception, now: float) -> Any:
            kind = classify(exc, bool(getattr(call, "clamped", False)))
            wait = server_wait(exc) if kind == "failure" else None
            event = Outcome(now, key, self._ticket(call.call_id, key), kind, wait)  # type: ignore[arg-type]
            return self._run(event, original["attempt_failed"], call, key, exc, now, answer=False)

        def allow_retry(call: Any, key: str, wait: float, now: float) -> Any:
            return self._run(IsClosed(now, key), original["allow_retry"], call, key, wait, now)

        def readmit(call: Any, key: str, now: float) -> Any:
            return self._run(IsClosed(now, key), original["readmit"], call, key, now)

        def attempt_abandoned(call: Any, key: str) -> Any:
            event = Outcome(self._last_now, key, self._ticket(call.call_id, key), "abandoned")
            return self._run(event, original["attempt_abandoned"], call, key, answer=False)

        for name, hook in (
            ("admit", admit),
            ("last_resort", last_resort),
            ("attempt_succeeded", attempt_succeeded),
            ("attempt_failed", attempt_failed),
            ("allow_retry", allow_retry),
            ("readmit", readmit),
            ("attempt_abandoned", attempt_abandoned),
        ):
            setattr(strategy, name, hook)
        # The pipeline counts a success of a call that probes nothing without the hook, through
        # the strategy's fast path (notdiamond._strategy.FastPath): record those too, in place.
        fast_path = getattr(strategy, "fast_path", None)
        succeeded = None if fast_path is None else fast_path().succeeded
        for key, record in list((succeeded or {}).items()):
            succeeded[key] = self._recorded_success(key, record)  # type: ignore[index]

    def _recorded_success(self, key: str, record: Callable[[float], Any]) -> Callable[[float], Any]:
        def recorded(now: float) -> Any:
            with self._lock:  # not a probe: a ticket of its own never matches the probe's
                ticket = next(self._numbers)
            return self._run(Outcome(now, key, ticket, "success"), record, now, answer=False)

        return recorded

    def _ticket(self, call_id: int, key: str, *, fresh: bool = False) -> int:
        """The ticket of the call's admission to ``key`` (a new one for each admission)."""
        with self._lock:
            if fresh or (call_id, key) not in self._tickets:
                self._tickets[(call_id, key)] = next(self._numbers)
            return self._tickets[(call_id, key)]

    def _run(self, event: Event, hook: Callable[..., Any], *args: Any, answer: bool = True) -> Any:
        with self._lock:
            self._pending = []
            result = hook(*args)
            shown: str | None = None
            if answer:
                shown = (
                    result if isinstance(result, str) else ("closed" if result else "not_closed")
                )
            self.steps.append(Step(event, shown, self._pending))
            self._last_now = event.at
            return result


def config_of(options: Any, retry_after_cap: float) -> BreakerConfig:
    """The reference's settings for a runtime ``CircuitBreaker`` (lease: the longest break)."""
    return BreakerConfig(
        consecutive_failures=options.consecutive_failures,
        failure_ratio=options.failure_ratio,
        minimum_calls=options.minimum_calls,
        window=options.window,
        break_duration=options.break_duration,
        max_break_duration=options.max_break_duration,
        retry_after_cap=retry_after_cap,
        probe_lease=options.max_break_duration,
    )


def disagreements(steps: Sequence[Step], config: BreakerConfig, limit: int = 20) -> list[str]:
    """Every step where the reference's decision or transitions differ from the runtime's."""
    reference = ReferenceBreaker(config)
    found: list[str] = []
    for index, step in enumerate(steps):
        event = step.event
        expected = reference.step(event)
        decisions = [r for r in expected if isinstance(r, Decision)]
        changes = sorted(repr(r) for r in expected if isinstance(r, Change))
        if isinstance(event, LastResort):
            want: str | None = decisions[0].key if decisions else None
        else:
            want = decisions[0].answer if decisions else None
        if want != step.answer or changes != sorted(map(repr, step.changes)):
            found.append(
                f"step {index} {event!r}: runtime {step.answer!r} {step.changes!r}, "
                f"reference {want!r} {changes!r}"
            )
            if len(found) >= limit:
                break
    return found


@dataclass(frozen=True)
class BudgetStep:
    """One hook call of a runtime retry budget: a first attempt, or a retry and its answer."""

    at: float
    key: str
    first: bool
    granted: bool | None = None


class BudgetRecorder:
    """Installs itself on a runtime ``RetryBudgetStrategy`` instance (hooks serialised)."""

    def __init__(self, strategy: Any) -> None:
        self.steps: list[BudgetStep] = []
        lock = threading.Lock()
        started = strategy.attempt_started
        allow = strategy.allow_retry

        def attempt_started(call: Any, key: str, attempt: int, now: float) -> None:
            with lock:
                started(call, key, attempt, now)
                if attempt == 1:
                    self.steps.append(BudgetStep(now, key, first=True))

        def allow_retry(call: Any, key: str, wait: float, now: float) -> bool:
            with lock:
                granted = bool(allow(call, key, wait, now))
                self.steps.append(BudgetStep(now, key, first=False, granted=granted))
                return granted

        strategy.attempt_started = attempt_started
        strategy.allow_retry = allow_retry


def budget_disagreements(steps: Sequence[BudgetStep], config: BudgetConfig) -> list[str]:
    """Every retry the runtime granted or refused where the reference decides otherwise."""
    reference = ReferenceBudget(config)
    found: list[str] = []
    for index, step in enumerate(steps):
        if step.first:
            reference.first_attempt(step.at, step.key)
        elif reference.retry(step.at, step.key) != step.granted:
            found.append(f"step {index} {step!r}: reference says {not step.granted}")
    return found
