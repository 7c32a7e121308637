"""What happened in one test with the pytest plugin: calls, the runtime's attempts, HTTP requests.

Three views, all on the test's virtual clock:

* :class:`Call`: one call the test made through ``chaos.call``/``chaos.acall``: when it started and
  ended, what it returned or raised, and the attempts and HTTP requests made on its behalf;
* ``attempts``: every ``notdiamond.AttemptEvent`` the runtime reported (the manager's ``observer``
  view: model, attempt number, wait before it, what followed);
* ``http``: every request a fake provider answered (``chaos.trace.HttpRecord``: the ground truth of
  what each model received, with its outcome).

:class:`CallTrace` answers the common questions (requests per model, waits, success rate, the
longest call) and has ``assert_*`` helpers whose failure messages say what happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .trace import HttpRecord, Trace


@dataclass
class Call:
    """One call made through ``chaos.call`` (or ``chaos.acall``)."""

    #: Position among the test's calls (0, 1, ...).
    index: int
    #: Virtual seconds at its start and its end.
    started: float
    finished: float = 0.0
    #: What the call returned (None when it raised).
    value: Any = None
    #: What it raised (None when it returned).
    error: Exception | None = None
    #: The runtime's ``AttemptEvent`` objects for this call.
    attempts: list[Any] = field(default_factory=list)
    #: The HTTP requests the fake providers answered for this call.
    requests: list[HttpRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def seconds(self) -> float:
        """Virtual seconds from the call's start to its end (waits and fallbacks included)."""
        return self.finished - self.started

    @property
    def answered_by(self) -> str | None:
        """The model key whose answer the call returned (None if it raised)."""
        if self.error is not None:
            return None
        for record in reversed(self.requests):
            if record.outcome == "ok":
                return record.key
        return None

    def describe(self) -> str:
        outcome = (
            f"answered by {self.answered_by}"
            if self.ok
            else f"raised {type(self.error).__name__}: {self.error}"
        )
        path = ", ".join(f"{r.key} {r.outcome}" for r in self.requests) or "no request"
        return (
            f"call {self.index} at t={self.started:.3f}s took {self.seconds:.3f}s, {outcome} "
            f"[{path}]"
        )


class CallTrace:
    """The calls, attempts and HTTP requests of one test, with helpers for assertions."""

    def __init__(self) -> None:
        #: The fake providers' record (its ``http`` list is :attr:`http`).
        self.raw = Trace()
        self.calls: list[Call] = []
        #: Every ``notdiamond.AttemptEvent`` the runtime reported, in order.
        self.attempts: list[Any] = []
        #: Every circuit breaker transition (``notdiamond.BreakerTransition``), in order.
        self.transitions: list[Any] = []

    # -- what was recorded -----------------------------------------------------------------
    @property
    def http(self) -> list[HttpRecord]:
        """Every HTTP request a fake provider answered, in order."""
        return self.raw.http

    def requests(self, model: str) -> int:
        """HTTP requests the fake provider of ``model`` (``"<provider>/<model>"``) received,
        including those its client cancelled before the answer (e.g. a hedge's loser)."""
        return self.requests_per_model().get(model, 0)

    def requests_per_model(self) -> dict[str, int]:
        """HTTP requests each model received (answered or cancelled by the client)."""
        return dict(Counter(record.key for record in [*self.http, *self.raw.cancelled]))

    def attempts_per_model(self) -> dict[str, int]:
        """Attempts per model as the runtime reported them."""
        return dict(Counter(event.model for event in self.attempts))

    @property
    def waits(self) -> list[float]:
        """Every backoff wait the runtime took before an attempt (seconds, in order)."""
        return [event.wait_before for event in self.attempts if event.wait_before > 0]

    @property
    def total_wait(self) -> float:
        return sum(self.waits)

    @property
    def success_rate(self) -> float:
        """The share of calls that returned (1.0 when no call was made)."""
        if not self.calls:
            return 1.0
        return sum(call.ok for call in self.calls) / len(self.calls)

    @property
    def failed_calls(self) -> list[Call]:
        return [call for call in self.calls if not call.ok]

    @property
    def longest_call(self) -> Call | None:
        return max(self.calls, key=lambda call: call.seconds, default=None)

    def answered_by(self) -> dict[str | None, int]:
        """How many calls each model answered (``None``: calls that raised)."""
        return dict(Counter(call.answered_by for call in self.calls))

    def summary(self) -> str:
        """A few lines on the whole test: calls, outcomes, requests per model, waits."""
        longest = self.longest_call
        lines = [
            f"{len(self.calls)} call(s), success rate {self.success_rate:.1%}, "
            f"longest {longest.seconds:.3f}s"
            if longest
            else "no call made through chaos.call",
            f"HTTP requests per model: {self.requests_per_model()}",
            f"backoff waits: {len(self.waits)}, {self.total_wait:.3f}s in all",
        ]
        if self.transitions:
            lines.append(f"breaker transitions: {len(self.transitions)}")
        return "\n".join(lines)

    # -- assertions --------------------------------------------------------------------------
    def _calls_needed(self) -> None:
        if not self.calls:
            raise AssertionError(
                "no call was recorded: make the calls through chaos.call(fn, *args) "
                "(or `await chaos.acall(fn, *args)`), so the trace knows where each begins and ends."
            )

    def assert_all_succeeded(self) -> None:
        """Every call returned."""
        self._calls_needed()
        failed = self.failed_calls
        if failed:
            raise AssertionError(
                f"{len(failed)} of {len(self.calls)} call(s) raised; the first:\n  "
                + "\n  ".join(call.describe() for call in failed[:5])
                + "\n"
                + self.summary()
            )

    def assert_success_rate(self, at_least: float) -> None:
        """At least the share ``at_least`` (0..1) of the calls returned."""
        self._calls_needed()
        if self.success_rate < at_least:
            failed = self.failed_calls
            raise AssertionError(
                f"success rate {self.success_rate:.2%} is below {at_least:.2%}; failed calls:\n  "
                + "\n  ".join(call.describe() for call in failed[:5])
                + "\n"
                + self.summary()
            )

    def assert_no_call_longer_than(self, seconds: float) -> None:
        """No call took longer than ``seconds`` of virtual time."""
        self._calls_needed()
        slow = sorted(
            (call for call in self.calls if call.seconds > seconds),
            key=lambda call: -call.seconds,
        )
        if slow:
            raise AssertionError(
                f"{len(slow)} call(s) took longer than {seconds}s; the slowest:\n  "
                + "\n  ".join(call.describe() for call in slow[:5])
                + "\n"
                + self.summary()
            )

    def assert_requests_at_most(self, model: str, n: int) -> None:
        """The fake provider of ``model`` received at most ``n`` HTTP requests."""
        got = self.requests(model)
        if got > n:
            hint = "" if "/" in model else " (name models as '<provider>/<model>')"
            raise AssertionError(
                f"{model} received {got} request(s), more than {n}{hint}.\n" + self.summary()
            )
