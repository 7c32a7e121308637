"""Broken health strategies (issue 12 section 5): the breaker, deadline and budget checks must
catch each one. Registered into :data:`chaos.mutants.MUTANTS`.

Seams: the breaker's state machine ``notdiamond._health.circuit.Circuit`` (its ``failure``,
``admit`` and ``_open`` methods and its settings), the budget's ``BudgetState.try_retry``, and
``notdiamond._call.CallState._attempt_starts`` (where an attempt's timeout is cut to the time left).
A seam that moves makes the patch fail and the mutant's run crash, which fails the suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .monkeypatch import swapped


@contextlib.contextmanager
def _breaker_never_opens() -> Iterator[dict[str, Any]]:
    """Failures are never counted: the breaker stays closed through an outage."""
    from notdiamond._health.circuit import Circuit

    def ignore(self: Any, now: float, retry_after: float | None = None, token: int = 0) -> None:
        self.release(token)

    with swapped(Circuit, "failure", ignore):
        yield {}


@contextlib.contextmanager
def _opens_one_late() -> Iterator[dict[str, Any]]:
    """The breaker opens after ``consecutive_failures + 1`` failures in a row."""
    from notdiamond._health.circuit import Circuit

    original = Circuit.__init__

    def late(self: Any, key: str, *, consecutive_failures: int, **kwargs: Any) -> None:
        original(self, key, consecutive_failures=consecutive_failures + 1, **kwargs)

    with swapped(Circuit, "__init__", late):
        yield {}


@contextlib.contextmanager
def _half_open_lets_all_through() -> Iterator[dict[str, Any]]:
    """While a half-open probe is in flight, other calls are admitted instead of skipped."""
    from notdiamond._health.circuit import HALF_OPEN, Circuit

    original = Circuit.admit

    def admit(self: Any, now: float) -> tuple[str, int]:
        decision: tuple[str, int] = original(self, now)
        if decision[0] == "skip" and self.state is HALF_OPEN:
            return "admit", 0
        return decision

    with swapped(Circuit, "admit", admit):
        yield {}


@contextlib.contextmanager
def _break_not_doubled() -> Iterator[dict[str, Any]]:
    """A failed probe reopens the breaker for ``break_duration`` again, never doubled."""
    from notdiamond._health.circuit import Circuit

    original = Circuit._open

    def not_doubled(self: Any, *args: Any, **kwargs: Any) -> Any:
        opened = original(self, *args, **kwargs)
        self._break = self.break_duration
        return opened

    with swapped(Circuit, "_open", not_doubled):
        yield {}


@contextlib.contextmanager
def _deadline_ignored_on_last_attempt() -> Iterator[dict[str, Any]]:
    """An attempt that the deadline would cut short (the call's last) keeps its full timeout."""
    from notdiamond._call import CallState

    original = CallState._attempt_starts

    def uncut(self: Any, timeout: Any) -> Any:
        cut = original(self, timeout)
        if self.clamped:
            self.clamped = False
            return timeout
        return cut

    with swapped(CallState, "_attempt_starts", uncut):
        yield {}


@contextlib.contextmanager
def _budget_not_enforced() -> Iterator[dict[str, Any]]:
    """The retry budget grants (and counts) every retry."""
    from notdiamond._health.budget import BudgetState

    def always(self: Any, now: float) -> bool:
        with self._lock:
            self._prune(now)
            self._retries.append(now)
        return True

    with swapped(BudgetState, "try_retry", always):
        yield {}


def health_mutants() -> list[Any]:
    """The mutants, each with the scenario it runs on and the check that must catch it."""
    from .mutants import Mutant

    return [
        Mutant(
            "breaker_never_opens",
            "the circuit breaker never opens (failures not counted)",
            "breaker-outage",
            "breaker_reference",
            _breaker_never_opens,
            n=300,
        ),
        Mutant(
            "breaker_opens_one_late",
            "the breaker opens one consecutive failure late",
            "breaker-outage",
            "breaker_reference",
            _opens_one_late,
            n=300,
        ),
        Mutant(
            "half_open_lets_all_through",
            "half-open admits every call while the probe is in flight",
            "breaker-weights-async",
            "breaker_reference",
            _half_open_lets_all_through,
            n=600,
        ),
        Mutant(
            "break_not_doubled",
            "a failed probe reopens for break_duration again (not doubled)",
            "breaker-outage",
            "breaker_reference",
            _break_not_doubled,
            n=300,
        ),
        Mutant(
            "deadline_ignored_on_last_attempt",
            "the attempt the deadline would cut short keeps its full timeout",
            "deadline-slow",
            "deadline",
            _deadline_ignored_on_last_attempt,
            n=200,
        ),
        Mutant(
            "budget_not_enforced",
            "the retry budget grants every retry",
            "retry-storm-budget",
            "retry_budget",
            _budget_not_enforced,
            n=400,
        ),
    ]
