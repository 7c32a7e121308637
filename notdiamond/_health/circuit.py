"""The circuit-breaker state machine of one model key: closed, open, half-open.

This module knows nothing about calls, SDK errors or strategies: it is told, on the manager's clock,
that an attempt was admitted, succeeded, failed (with the server's ``Retry-After``, if any), ended
with an outcome that says nothing about the model's health, or was abandoned. The rules are
:class:`BreakerRules`, shared by :class:`Circuit` (counts in this process) and the Redis store's
breaker (counts shared by processes, ``redis_state.RedisCircuit``). Its rules:

- **Closed.** Every attempt is admitted. It opens on a failure when ``consecutive_failures``
  failures came in a row (ignored outcomes neither break nor extend the run; a success ends it), or
  when, counting the outcomes that ended within the last ``window`` seconds (time ``t`` with
  ``t > now - window``), at least ``minimum_calls`` ended and ``failures / calls >= failure_ratio``.
  Both rules are evaluated on failures only.
- **Open** for the current break (``break_duration`` at first). Every admission is skipped;
  outcomes of attempts admitted earlier are ignored. At ``now >= until`` the next admission finds it
  **half-open**.
- **Half-open.** One admission at a time gets the probe (a lease of ``probe_lease`` seconds; while
  it is held every other admission is skipped; once it expires another caller may probe). The
  probe's success closes the breaker and clears its counts and its doubling; the probe's failure
  reopens it with the break doubled, up to ``max_break_duration``; an ignored or abandoned probe
  just frees the lease. Other outcomes are ignored.
- **Last resort.** ``force_probe`` makes an open breaker half-open at once and hands its probe to
  the caller (a call that found every model open and sent nothing); an earlier lease is lost.
- **Retry-After.** A failure whose ``Retry-After`` exceeds ``retry_after_cap`` opens the breaker at
  once for at least that long, whatever its state (an open breaker's break is extended). Such an
  opening does not double the break by itself.

Every change of state is reported to ``on_transition`` after the lock is released (it may log).
The success of an attempt on a closed breaker takes no lock: a counter reset and a deque append.
The key is in ``not_closed`` (a set the store's breakers share) whenever the breaker is not
closed: it enters before the state leaves closed and leaves once the state is closed again, so a
key absent from it is closed, and a closed breaker's admission needs no call.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

State = Literal["closed", "open", "half_open"]
Admission = Literal["admit", "probe", "skip"]
Reason = Literal[
    "consecutive_failures",
    "failure_ratio",
    "retry_after",
    "probe_failed",
    "probe_succeeded",
    "break_ended",
    "last_resort",
]

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a breaker's state, with the figures behind it (never any message content).

    ``at`` is the clock time at which it was made; ``until`` the end of the break (opens only);
    ``break_duration`` how long that break is; ``failures``/``calls`` the window's counts and
    ``consecutive`` the run of failures when it opened (zeros for other transitions).
    """

    key: str
    before: State
    after: State
    at: float
    reason: Reason
    until: float | None = None
    break_duration: float | None = None
    failures: int = 0
    calls: int = 0
    consecutive: int = 0
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class CircuitHealth:
    """A breaker as ``manager.health()`` shows it, for dashboards.

    ``state`` as of ``now`` (an open breaker whose break has ended shows ``half_open``); ``until``
    the end of the current break (``None`` when closed); ``failures``/``calls`` within the window
    and ``consecutive`` failures in a row (while closed); ``next_break`` the length of the next
    break a rule would open; ``last_opened`` the transition that last opened it, if any.
    """

    key: str
    state: State
    until: float | None
    consecutive: int
    failures: int
    calls: int
    next_break: float
    probe_in_flight: bool
    last_opened: Transition | None


TransitionListener = Callable[[Transition], None]


class BreakerRules:
    """The state machine of one model key's breaker, as the module's doc states it.

    Shared by :class:`Circuit` (state in this process) and the Redis store's breaker (state shared
    by processes). A subclass says where the counts behind the rules come from
    (``_count_failure``, ``_counts``, ``_clear_counts``) and may add to what a transition does
    (``_grant``, ``_opened``, ``_closed``, ``_closed_by_probe``, ``_lease_freed``, ``_published``);
    its own ``success`` keeps the success path lock-free. Thread-safe; no lock is held while
    listeners run.
    """

    __slots__ = (
        "_bad",
        "_break",
        "_last_opened",
        "_lease_token",
        "_lease_until",
        "_lock",
        "_ok",
        "_prune_at",
        "_tokens",
        "break_duration",
        "consecutive_failures",
        "failure_ratio",
        "key",
        "max_break_duration",
        "minimum_calls",
        "not_closed",
        "on_transition",
        "probe_lease",
        "retry_after_cap",
        "state",
        "until",
        "window",
    )

    def _setup(
        self,
        key: str,
        *,
        consecutive_failures: int,
        failure_ratio: float,
        minimum_calls: int,
        window: float,
        break_duration: float,
        max_break_duration: float,
        retry_after_cap: float,
        probe_lease: float,
        on_transition: TransitionListener | None,
        not_closed: set[str] | None,
    ) -> None:
        self.key = key
        self.consecutive_failures = consecutive_failures
        self.failure_ratio = failure_ratio
        self.minimum_calls = minimum_calls
        self.window = window
        self.break_duration = break_duration
        self.max_break_duration = max_break_duration
        self.retry_after_cap = retry_after_cap
        self.probe_lease = probe_lease
        self.on_transition = on_transition
        #: The keys of the breakers (this one and its store's others) that are not closed now.
        self.not_closed: set[str] = set() if not_closed is None else not_closed
        self._lock = threading.Lock()
        #: Read without the lock by the success path and by admissions of a closed breaker.
        self.state: State = CLOSED
        self.until = 0.0  # end of the current break (meaningful while open or half-open)
        self._ok: deque[float] = deque()  # end times of successes while closed
        self._bad: deque[float] = deque()  # end times of failures while closed
        self._prune_at = 256
        self._break = break_duration  # the next break a rule opens
        self._tokens = 0  # probe lease tokens handed out so far
        self._lease_token = 0  # token of the probe in flight (0: none)
        self._lease_until = -math.inf
        self._last_opened: Transition | None = None

    # -- admission -----------------------------------------------------------------------------

    def admit(self, now: float) -> tuple[Admission, int]:
        """``("admit", 0)``, ``("skip", 0)`` or ``("probe", token)``; report the token back."""
        if self.state is CLOSED:
            return "admit", 0
        changed: Transition | None = None
        publish = False
        with self._lock:
            state = self.state
            if state is CLOSED:
                return "admit", 0
            if state is OPEN:
                if now < self.until:
                    return "skip", 0
                self.state = HALF_OPEN
                changed = Transition(self.key, OPEN, HALF_OPEN, now, "break_ended")
            if self._lease_token and now < self._lease_until:
                decision: tuple[Admission, int] = ("skip", 0)
            else:
                decision, publish = self._grant(now)
        self._report(changed)
        if publish:
            self._published()
        return decision

    def force_probe(self, now: float) -> int:
        """Make this breaker half-open now and hand its probe to the caller (a last resort).

        A probe already in flight loses its lease: its outcome will be ignored.
        """
        changed: Transition | None = None
        with self._lock:
            if self.state is CLOSED:
                return 0
            if self.state is OPEN:
                self.state = HALF_OPEN
                changed = Transition(self.key, OPEN, HALF_OPEN, now, "last_resort")
            token = self._take_lease(now)
        self._report(changed)
        return token

    def is_closed(self) -> bool:
        return self.state is CLOSED

    # -- outcomes ------------------------------------------------------------------------------

    def _probe_succeeded(self, now: float, token: int) -> Transition | None:
        """The probe with ``token`` answered: close (``None`` if it was not, or no longer, the probe)."""
        with self._lock:
            if token != self._lease_token:
                return None
            changed = Transition(self.key, HALF_OPEN, CLOSED, now, "probe_succeeded")
            self._close()
            self._closed_by_probe()
        self._report(changed)
        return changed

    def failure(self, now: float, retry_after: float | None = None, token: int = 0) -> None:
        """An attempt failed in a way that counts against the model (5xx, timeouts, 401, ...)."""
        server_break = (
            retry_after if retry_after is not None and retry_after > self.retry_after_cap else None
        )
        changed: Transition | None = None
        with self._lock:
            state = self.state
            if token and token == self._lease_token:  # this breaker's probe (so: half-open)
                changed = self._open(now, "probe_failed", server_break, 0, 0, 0)
            elif state is CLOSED:
                failures, calls, run = self._count_failure(now)
                reason: Reason | None = None
                if run >= self.consecutive_failures:
                    reason = "consecutive_failures"
                elif calls >= self.minimum_calls and failures / calls >= self.failure_ratio:
                    reason = "failure_ratio"
                elif server_break is not None:
                    reason = "retry_after"
                if reason is not None:
                    changed = self._open(now, reason, server_break, failures, calls, run)
            elif server_break is not None and (
                state is HALF_OPEN or now + server_break > self.until
            ):
                changed = self._open(now, "retry_after", server_break, 0, 0, 0)
        if changed is not None:
            self._report(changed)
            self._published()

    def release(self, token: int) -> None:
        """The probe with this token ended without a verdict (ignored, cancelled): free its lease."""
        if not token:
            return
        publish = False
        with self._lock:
            if token == self._lease_token:
                self._lease_token = 0
                self._lease_until = -math.inf
                publish = self._lease_freed()
        if publish:
            self._published()

    # -- inspection ----------------------------------------------------------------------------

    def health(self, now: float) -> CircuitHealth:
        with self._lock:
            self._prune(now)
            state = self.state
            if state is OPEN and now >= self.until:
                state = HALF_OPEN
            closed = state is CLOSED
            consecutive, failures, calls = self._counts() if closed else (0, 0, 0)
            return CircuitHealth(
                key=self.key,
                state=state,
                until=None if closed else self.until,
                consecutive=consecutive,
                failures=failures,
                calls=calls,
                next_break=self._break,
                probe_in_flight=bool(self._lease_token) and now < self._lease_until,
                last_opened=self._last_opened,
            )

    # -- internals (lock held) -----------------------------------------------------------------

    def _take_lease(self, now: float) -> int:
        self._tokens += 1
        self._lease_token = self._tokens
        self._lease_until = now + self.probe_lease
        return self._tokens

    def _open(
        self,
        now: float,
        reason: Reason,
        server_break: float | None,
        failures: int,
        calls: int,
        consecutive: int,
    ) -> Transition:
        duration = 0.0
        if reason != "retry_after":  # a rule opened it: this break, and double the next one
            duration = self._break
            self._break = min(self._break * 2.0, self.max_break_duration)
        if server_break is not None:
            duration = max(duration, server_break)
        before = self.state
        until = now + duration
        if before is OPEN:
            until = max(until, self.until)
            duration = until - now
        self.not_closed.add(self.key)  # before the state: see the module's doc
        self.state = OPEN
        self.until = until
        self._lease_token = 0
        self._lease_until = -math.inf
        self._clear_counts()
        self._opened()
        opened = Transition(
            self.key,
            before,
            OPEN,
            now,
            reason,
            until=until,
            break_duration=duration,
            failures=failures,
            calls=calls,
            consecutive=consecutive,
            retry_after=server_break,
        )
        self._last_opened = opened
        return opened

    def _close(self) -> None:
        self.state = CLOSED
        self.not_closed.discard(self.key)  # after the state: see the module's doc
        self._break = self.break_duration
        self._lease_token = 0
        self._lease_until = -math.inf
        self._clear_counts()
        self._closed()

    def _prune(self, now: float) -> None:
        cutoff = now - self.window
        for times in (self._ok, self._bad):
            while times and times[0] <= cutoff:
                times.popleft()
        self._prune_at = max(256, 2 * len(self._ok))

    def _report(self, changed: Transition | None) -> None:
        if changed is not None and self.on_transition is not None:
            self.on_transition(changed)

    # -- what a subclass says (lock held) ------------------------------------------------------

    def _count_failure(self, now: float) -> tuple[int, int, int]:
        """Count a failure while closed: the window's failures and calls, and the run, after it."""
        raise NotImplementedError

    def _counts(self) -> tuple[int, int, int]:
        """While closed: the run of failures, and the window's failures and calls."""
        raise NotImplementedError

    def _clear_counts(self) -> None:
        raise NotImplementedError

    def _grant(self, now: float) -> tuple[tuple[Admission, int], bool]:
        """Half-open, no lease held: the admission's answer, and whether to publish at once."""
        return ("probe", self._take_lease(now)), False

    def _opened(self) -> None:
        """What else an opening resets."""

    def _closed(self) -> None:
        """What else a closing resets."""

    def _closed_by_probe(self) -> None:
        """What else the probe's success does (after ``_closed``)."""

    def _lease_freed(self) -> bool:
        """What else freeing the probe's lease does; whether to publish it at once."""
        return False

    # -- what a subclass says (no lock held) ---------------------------------------------------

    def _published(self) -> None:
        """A transition (or a lease given back) was made here: share it now if state is shared."""


class Circuit(BreakerRules):
    """The breaker of one model key, its state in this process."""

    __slots__ = ("_run",)

    def __init__(
        self,
        key: str,
        *,
        consecutive_failures: int,
        failure_ratio: float,
        minimum_calls: int,
        window: float,
        break_duration: float,
        max_break_duration: float,
        retry_after_cap: float = math.inf,
        probe_lease: float | None = None,
        on_transition: TransitionListener | None = None,
        not_closed: set[str] | None = None,
    ) -> None:
        self._setup(
            key,
            consecutive_failures=consecutive_failures,
            failure_ratio=failure_ratio,
            minimum_calls=minimum_calls,
            window=window,
            break_duration=break_duration,
            max_break_duration=max_break_duration,
            retry_after_cap=retry_after_cap,
            probe_lease=max_break_duration if probe_lease is None else probe_lease,
            on_transition=on_transition,
            not_closed=not_closed,
        )
        self._run = 0  # failures in a row while closed

    def success(self, now: float, token: int = 0) -> None:
        """An attempt succeeded. ``token``: the probe token if it was this breaker's probe.

        A probe whose lease was lost counts as an ordinary outcome.
        """
        if not token and self.state is CLOSED:  # the success path: no lock
            self._run = 0
            ok = self._ok
            ok.append(now)
            if len(ok) > self._prune_at:
                with self._lock:
                    self._prune(now)
            return
        if token:
            if self._probe_succeeded(now, token) is not None:
                return
            self.success(now)  # not (or no longer) the probe: an ordinary outcome
        # Otherwise it was admitted before the breaker opened: it says nothing about the break.

    def _count_failure(self, now: float) -> tuple[int, int, int]:
        self._run += 1
        self._bad.append(now)
        self._prune(now)
        failures = len(self._bad)
        return failures, failures + len(self._ok), self._run

    def _counts(self) -> tuple[int, int, int]:
        failures = len(self._bad)
        return self._run, failures, failures + len(self._ok)

    def _clear_counts(self) -> None:
        self._run = 0
        self._ok.clear()
        self._bad.clear()
        self._prune_at = 256
