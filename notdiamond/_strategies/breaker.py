"""The circuit breaker as a pipeline strategy: ``init(..., circuit_breaker=CircuitBreaker(...))``.

The state machine itself is :class:`notdiamond._health.circuit.Circuit` (one per model key, held
by the health store); this module only translates the pipeline's hooks into it:

- ``admit``: a closed breaker admits; an open one skips the model (as if it had failed in this
  call); a half-open one hands this call the probe (one attempt, no retry) or skips while another
  call holds it. ``last_resort``: a call that found every model open and sent nothing probes the
  model whose break ends soonest.
- ``attempt_failed``: transient errors (SPEC 4.3: timeouts, connection errors, 408, 409, 429, 5xx)
  and 401/403 (the provider refuses us) count as failures; any other outcome (400, 404, 422, an
  exception that is not the SDK's) is ignored by both rules, and so is a timeout of an attempt
  whose timeout the call's deadline had cut short. A ``Retry-After`` beyond the
  manager's ``retry_after_cap`` opens the breaker at once for that long.
- ``allow_retry``/``readmit``: a model whose breaker opened meanwhile gets no further attempt in
  this call; it falls back at once (a wait already begun is not cut short).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

import openai

from notdiamond._health.circuit import CircuitHealth, Transition
from notdiamond._health.store import CircuitPort, HealthStore, InProcessStore
from notdiamond._policy import is_transient, retry_after_seconds
from notdiamond._strategy import Admission, CallView, FastPath, Strategy

from . import _checks

logger = logging.getLogger("notdiamond")

#: Statuses that say the provider refuses us (not the request's fault): they count as failures.
REFUSED_STATUSES: Final = frozenset({401, 403})


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Settings of the per-model circuit breaker (``notdiamond.CircuitBreaker``).

    It opens after ``consecutive_failures`` failed attempts in a row on a model, or when, within
    the last ``window`` seconds, at least ``minimum_calls`` attempts ended and the failed share
    reached ``failure_ratio``. Open, the model is skipped for ``break_duration`` seconds; then one
    call probes it: success closes it, failure reopens it with the break doubled, up to
    ``max_break_duration`` (the doubling resets once it has closed).
    """

    consecutive_failures: int = 5
    failure_ratio: float = 0.5
    minimum_calls: int = 20
    window: float = 30.0
    break_duration: float = 30.0
    max_break_duration: float = 300.0

    def __post_init__(self) -> None:
        fields = {
            "consecutive_failures": _checks.count(
                "CircuitBreaker(consecutive_failures=...)",
                self.consecutive_failures,
                "consecutive_failures=5",
            ),
            "failure_ratio": _checks.share(
                "CircuitBreaker(failure_ratio=...)", self.failure_ratio, "failure_ratio=0.5"
            ),
            "minimum_calls": _checks.count(
                "CircuitBreaker(minimum_calls=...)", self.minimum_calls, "minimum_calls=20"
            ),
            "window": _checks.seconds("CircuitBreaker(window=...)", self.window, "window=30.0"),
            "break_duration": _checks.seconds(
                "CircuitBreaker(break_duration=...)", self.break_duration, "break_duration=30.0"
            ),
            "max_break_duration": _checks.seconds(
                "CircuitBreaker(max_break_duration=...)",
                self.max_break_duration,
                "max_break_duration=300.0",
            ),
        }
        if fields["max_break_duration"] < fields["break_duration"]:
            raise ValueError(
                f"CircuitBreaker: max_break_duration ({self.max_break_duration!r}) must be at "
                f"least break_duration ({self.break_duration!r}): raise max_break_duration or "
                "lower break_duration."
            )
        for name, value in fields.items():
            object.__setattr__(self, name, value)


def circuit_breaker_option(value: object) -> CircuitBreaker | None:
    """The init option ``circuit_breaker=``: ``True`` = the defaults, ``None``/``False`` = off."""
    return _checks.switch("circuit_breaker", value, CircuitBreaker)


def counts_against_model(exc: BaseException) -> bool | None:
    """``True``: a failure of the model; ``None``: says nothing about its health (ignored)."""
    if is_transient(exc):
        return True
    if isinstance(exc, openai.APIStatusError) and exc.status_code in REFUSED_STATUSES:
        return True
    return None


class CircuitBreakerStrategy(Strategy):
    """Skips models whose breaker is open; one call at a time probes a half-open one."""

    name: ClassVar[str] = "circuit_breaker"

    def __init__(
        self,
        options: CircuitBreaker,
        keys: Sequence[str],
        *,
        retry_after_cap: float = math.inf,
        store: HealthStore | None = None,
        report: Callable[[Transition], object] | None = None,
    ) -> None:
        self.options = options
        self.report = report
        health_store: HealthStore = InProcessStore() if store is None else store
        self.circuits: dict[str, CircuitPort] = {
            key: health_store.circuit(
                key, options, retry_after_cap=retry_after_cap, on_transition=self._transition
            )
            for key in keys
        }
        #: The probe token of each call that is probing a model now (rare: half-open only).
        self._probes: dict[tuple[int, str], int] = {}
        #: What ``attempt_succeeded`` does for a call that probes nothing (see ``fast_path``).
        self.record_success: dict[str, Callable[[float], object]] = {
            key: circuit.success for key, circuit in self.circuits.items()
        }

    def fast_path(self) -> FastPath:
        """A closed breaker admits without a word, and a success on it is just counted.

        ``unsettled`` is the set of keys whose breaker is not closed, kept by the circuits
        themselves when they all share one (the in-process and Redis stores do).
        """
        boards = [getattr(circuit, "not_closed", None) for circuit in self.circuits.values()]
        board = boards[0] if boards else None
        shared = isinstance(board, set) and all(b is board for b in boards)
        return FastPath(unsettled=board if shared else None, succeeded=self.record_success)

    # -- hooks ---------------------------------------------------------------------------------

    def admit(self, call: CallView, key: str, now: float) -> Admission:
        circuit = self.circuits[key]
        if circuit.state == "closed":
            return "admit"
        decision, token = circuit.admit(now)
        if token:
            self._probes[call.call_id, key] = token
        return decision

    def last_resort(self, call: CallView, skipped: Sequence[str], now: float) -> str | None:
        """A skipped model whose breaker has closed since, else the one whose break ends soonest."""
        candidates = [key for key in skipped if key in self.circuits]
        if not candidates:
            return None
        for key in candidates:
            if self.circuits[key].is_closed():
                return key
        key = min(candidates, key=lambda k: self.circuits[k].until)
        token = self.circuits[key].force_probe(now)
        if token:
            self._probes[call.call_id, key] = token
        return key

    def attempt_succeeded(self, call: CallView, key: str, now: float) -> None:
        if call.probing is None:
            self.circuits[key].success(now)
        else:
            token = self._probes.pop((call.call_id, key), 0) if call.probing == key else 0
            self.circuits[key].success(now, token)

    def attempt_failed(self, call: CallView, key: str, exc: Exception, now: float) -> None:
        token = self._probes.pop((call.call_id, key), 0) if call.probing == key else 0
        circuit = self.circuits[key]
        if call.clamped and isinstance(exc, openai.APITimeoutError):
            circuit.release(token)  # the call's deadline cut it short: says nothing of the model
        elif counts_against_model(exc):
            circuit.failure(now, retry_after_seconds(exc), token)
        else:
            circuit.release(token)

    def allow_retry(self, call: CallView, key: str, wait: float, now: float) -> bool:
        return self.circuits[key].is_closed()

    def readmit(self, call: CallView, key: str, now: float) -> bool:
        return self.circuits[key].is_closed()

    def attempt_abandoned(self, call: CallView, key: str) -> None:
        if call.probing == key:
            self.circuits[key].release(self._probes.pop((call.call_id, key), 0))

    # -- reporting -----------------------------------------------------------------------------

    def health(self, now: float) -> dict[str, CircuitHealth]:
        return {key: circuit.health(now) for key, circuit in self.circuits.items()}

    def _transition(self, change: Transition) -> None:
        if change.after == "open":
            if logger.isEnabledFor(logging.WARNING):
                logger.warning(
                    "circuit breaker for %s opened: %s; skipping it for %.3fs",
                    change.key,
                    self._why(change),
                    change.break_duration or 0.0,
                )
        elif change.after == "closed":
            logger.info("circuit breaker for %s closed (probe succeeded)", change.key)
        else:
            logger.info(
                "circuit breaker for %s half-open (%s); probing it",
                change.key,
                "break ended" if change.reason == "break_ended" else "every model open",
            )
        if self.report is not None:
            self.report(change)

    def _why(self, change: Transition) -> str:
        """The figures that opened it (never any message content)."""
        if change.reason == "consecutive_failures":
            why = f"{change.consecutive} failures in a row"
        elif change.reason == "failure_ratio":
            why = (
                f"{change.failures} of {change.calls} attempts failed within "
                f"{self.options.window:g}s"
            )
        elif change.reason == "probe_failed":
            why = "the half-open probe failed"
        else:
            why = "the server asked to wait"
        if change.retry_after is not None:
            why += f", Retry-After {change.retry_after:g}s beyond retry_after_cap"
        return why
