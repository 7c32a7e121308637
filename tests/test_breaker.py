"""The circuit breaker: its state machine on an injected clock, its options, its strategy hooks, and
agreement with the harness's independent reference model on random traces."""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.reference.breaker import (
    Admit,
    BreakerConfig,
    Change,
    Decision,
    IsClosed,
    LastResort,
    Outcome,
    ReferenceBreaker,
)
from notdiamond._health.circuit import Circuit, Transition
from notdiamond._health.store import CircuitPort, InProcessStore
from notdiamond._strategies.breaker import (
    CircuitBreaker,
    CircuitBreakerStrategy,
    circuit_breaker_option,
    counts_against_model,
)
from tests.fakes import H

A = "openai/a"
B = "azure/b"


def make(
    transitions: list[Transition] | None = None,
    *,
    consecutive_failures: int = 3,
    failure_ratio: float = 0.5,
    minimum_calls: int = 10,
    window: float = 10.0,
    break_duration: float = 5.0,
    max_break_duration: float = 30.0,
    retry_after_cap: float = 60.0,
    probe_lease: float = 100.0,
) -> Circuit:
    return Circuit(
        A,
        consecutive_failures=consecutive_failures,
        failure_ratio=failure_ratio,
        minimum_calls=minimum_calls,
        window=window,
        break_duration=break_duration,
        max_break_duration=max_break_duration,
        retry_after_cap=retry_after_cap,
        probe_lease=probe_lease,
        on_transition=None if transitions is None else transitions.append,
    )


def opened(c: Circuit, at: float) -> None:
    for i in range(c.consecutive_failures):
        c.failure(at + i * 0.001)
    assert c.state == "open"


# -- the state machine ---------------------------------------------------------------------------


def test_consecutive_failures_open_it_with_figures_and_skip_until_the_break_ends() -> None:
    seen: list[Transition] = []
    c = make(seen)
    for _ in range(10):
        c.success(0.5)
    c.failure(1.0)
    c.failure(1.1)
    assert c.state == "closed"
    assert c.admit(1.2) == ("admit", 0)
    c.failure(1.3)  # the third in a row: earlier successes do not dilute this rule
    assert c.state == "open"
    assert c.until == pytest.approx(6.3)
    (t,) = seen
    assert (t.before, t.after, t.reason, t.consecutive, t.at) == (
        "closed",
        "open",
        "consecutive_failures",
        3,
        1.3,
    )
    assert t.failures == 3
    assert t.calls == 13
    assert t.break_duration == 5.0
    assert c.admit(6.29) == ("skip", 0)


def test_a_success_ends_the_run_and_ignored_outcomes_neither_break_nor_extend_it() -> None:
    c = make()
    c.failure(1.0)
    c.failure(1.0)
    c.success(1.0)
    c.failure(1.0)
    c.failure(1.0)
    assert c.state == "closed"
    c.release(0)  # an ignored outcome (400) of an ordinary attempt: no effect at all
    assert c.health(1.0).consecutive == 2
    c.failure(1.0)
    assert c.state == "open"


def test_failure_ratio_over_the_window_with_minimum_calls() -> None:
    seen: list[Transition] = []
    c = make(seen, consecutive_failures=100, minimum_calls=10, failure_ratio=0.5, window=10.0)
    # 5 successes at t=0, then alternating failure/success: ratio reaches 0.5 only once 10 calls
    # ended within the window, and the earlier successes dilute it until they leave the window.
    for _ in range(5):
        c.success(0.0)
    for i in range(4):
        c.failure(1.0 + i)
        c.success(1.5 + i)
    assert c.state == "closed"  # 4 failed of 13
    c.failure(10.0)  # window (0, 10]: the t=0 successes are out: 5 failed of 9 calls < minimum
    assert c.state == "closed"
    c.failure(10.2)  # 6 of 10 >= 0.5
    assert c.state == "open"
    assert seen[-1].reason == "failure_ratio"
    assert (seen[-1].failures, seen[-1].calls) == (6, 10)


def test_ratio_exactly_reached_opens_and_successes_inside_the_window_dilute() -> None:
    c = make(consecutive_failures=100, minimum_calls=4, failure_ratio=0.5)
    c.success(0.0)
    c.success(0.0)
    c.success(0.0)
    c.failure(0.0)  # 1 of 4
    c.failure(0.0)  # 2 of 5
    assert c.state == "closed"
    c.failure(0.0)  # 3 of 6 = 0.5
    assert c.state == "open"


def test_half_open_single_probe_with_lease_then_success_closes_and_clears() -> None:
    seen: list[Transition] = []
    c = make(seen, probe_lease=2.0)
    opened(c, 0.0)
    until = c.until
    assert c.admit(until - 0.001) == ("skip", 0)
    decision, token = c.admit(until)
    assert decision == "probe"
    assert token > 0
    assert seen[-1].after == "half_open"
    assert c.admit(until + 1.0) == ("skip", 0)  # the lease is held: every other call skips
    c.success(until + 1.5, token)
    assert c.state == "closed"
    assert seen[-1].reason == "probe_succeeded"
    h = c.health(until + 1.5)
    assert (h.state, h.until, h.consecutive, h.calls) == ("closed", None, 0, 0)
    assert h.next_break == 5.0


def test_an_expired_probe_lease_lets_another_call_probe_and_the_stale_outcome_is_ignored() -> None:
    c = make(probe_lease=2.0)
    opened(c, 0.0)
    _, first = c.admit(c.until)
    decision, second = c.admit(c.until + 2.0)
    assert decision == "probe"
    assert second != first
    c.failure(c.until + 3.0, token=first)  # the old probe: no longer the breaker's probe
    assert c.state == "half_open"
    c.success(c.until + 3.0, token=second)
    assert c.state == "closed"


def test_probe_failure_doubles_the_break_up_to_the_max_and_closing_resets_it() -> None:
    seen: list[Transition] = []
    c = make(seen, break_duration=5.0, max_break_duration=30.0)
    opened(c, 0.0)
    breaks = [seen[-1].break_duration]
    for _ in range(4):
        at = c.until
        _, token = c.admit(at)
        c.failure(at, token=token)
        assert seen[-1].reason == "probe_failed"
        breaks.append(seen[-1].break_duration)
    assert breaks == [5.0, 10.0, 20.0, 30.0, 30.0]
    at = c.until
    _, token = c.admit(at)
    c.success(at, token)
    opened(c, at + 1.0)
    assert seen[-1].break_duration == 5.0


def test_ignored_or_abandoned_probe_frees_the_lease_without_a_verdict() -> None:
    c = make()
    opened(c, 0.0)
    _, token = c.admit(c.until)
    c.release(token)
    assert c.state == "half_open"
    decision, again = c.admit(c.until)
    assert decision == "probe"
    assert again != token


def test_outcomes_of_attempts_admitted_before_it_opened_are_ignored() -> None:
    c = make()
    opened(c, 0.0)
    until = c.until
    c.success(1.0)
    c.failure(1.0)
    assert (c.state, c.until) == ("open", until)
    assert c.admit(until)[0] == "probe"
    c.success(until, 0)  # not the probe
    assert c.state == "half_open"


def test_retry_after_beyond_the_cap_opens_at_once_for_that_long() -> None:
    seen: list[Transition] = []
    c = make(seen, retry_after_cap=60.0)
    c.failure(1.0, retry_after=60.0)  # at the cap: waited for, not an opening
    assert c.state == "closed"
    c.failure(2.0, retry_after=120.0)
    assert c.state == "open"
    assert c.until == 122.0
    assert (seen[-1].reason, seen[-1].retry_after) == ("retry_after", 120.0)
    # Not a rule-made opening: the next one still lasts break_duration.
    assert c.health(2.0).next_break == 5.0
    c.failure(3.0, retry_after=200.0)  # while open: extends the break
    assert c.until == 203.0
    c.failure(4.0, retry_after=61.0)  # ends earlier: no change
    assert c.until == 203.0


def test_a_rule_opening_with_a_long_retry_after_takes_the_longer_break() -> None:
    c = make(retry_after_cap=1.0)
    c.failure(0.0)
    c.failure(0.0)
    c.failure(0.0, retry_after=2.0)  # the rule's 5 s is longer
    assert c.until == 5.0
    c2 = make(retry_after_cap=1.0)
    c2.failure(0.0)
    c2.failure(0.0)
    c2.failure(0.0, retry_after=50.0)
    assert c2.until == 50.0


def test_force_probe_makes_an_open_breaker_half_open_for_the_caller() -> None:
    seen: list[Transition] = []
    c = make(seen)
    opened(c, 0.0)
    token = c.force_probe(1.0)
    assert token > 0
    assert (seen[-1].after, seen[-1].reason) == ("half_open", "last_resort")
    c.success(1.1, token)
    assert c.state == "closed"


def test_health_snapshot_shows_half_open_once_the_break_ended() -> None:
    c = make()
    c.failure(0.0)
    h = c.health(0.0)
    assert (h.state, h.consecutive, h.failures, h.calls) == ("closed", 1, 1, 1)
    assert c.health(20.0).calls == 0  # left the window
    opened(c, 1.0)
    h = c.health(2.0)
    assert h.state == "open"
    assert h.until == c.until
    assert h.last_opened is not None
    assert h.last_opened.reason == "consecutive_failures"
    assert c.health(c.until).state == "half_open"


def test_success_history_is_pruned_so_memory_stays_bounded() -> None:
    c = make(window=1.0)
    for i in range(10_000):
        c.success(i * 0.01)
    assert len(c._ok) <= 2 * 256 + 1


def test_in_process_store_hands_out_one_circuit_per_key() -> None:
    store = InProcessStore()
    first = store.circuit(A, CircuitBreaker())
    assert store.circuit(A, CircuitBreaker()) is first
    assert isinstance(first, CircuitPort)


# -- options -------------------------------------------------------------------------------------


def test_defaults_and_option_parsing() -> None:
    d = CircuitBreaker()
    assert (
        d.consecutive_failures,
        d.failure_ratio,
        d.minimum_calls,
        d.window,
        d.break_duration,
        d.max_break_duration,
    ) == (5, 0.5, 20, 30.0, 30.0, 300.0)
    assert circuit_breaker_option(True) == CircuitBreaker()
    assert circuit_breaker_option(None) is None
    assert circuit_breaker_option(False) is None
    custom = CircuitBreaker(consecutive_failures=2)
    assert circuit_breaker_option(custom) is custom
    with pytest.raises(TypeError, match=r"CircuitBreaker\(\.\.\.\), True"):
        circuit_breaker_option({"consecutive_failures": 2})
    assert isinstance(CircuitBreaker(window=3).window, float)


not_numbers = st.one_of(st.booleans(), st.text(max_size=3), st.none(), st.lists(st.integers()))


@settings(deadline=None)  # timing varies on a shared machine
@given(n=st.integers())
def test_counts_must_be_integers_at_least_one(n: int) -> None:
    for name in ("consecutive_failures", "minimum_calls"):
        if n >= 1:
            assert getattr(CircuitBreaker(**{name: n}), name) == n
        else:
            with pytest.raises(ValueError, match=rf"{name}=.*whole number >= 1"):
                CircuitBreaker(**{name: n})


@settings(deadline=None)  # timing varies on a shared machine
@given(value=st.one_of(not_numbers, st.floats(allow_nan=True)))
def test_counts_refuse_bools_floats_and_other_types(value: object) -> None:
    with pytest.raises(TypeError, match=r"whole number >= 1.*E\.g\. consecutive_failures=5"):
        CircuitBreaker(consecutive_failures=value)  # type: ignore[arg-type]


@settings(deadline=None)  # timing varies on a shared machine
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()))
def test_failure_ratio_is_in_zero_exclusive_one_inclusive(value: float) -> None:
    if math.isfinite(value) and 0 < value <= 1:
        assert CircuitBreaker(failure_ratio=value).failure_ratio == value
    else:
        with pytest.raises(ValueError, match=r"failure_ratio"):
            CircuitBreaker(failure_ratio=value)


@settings(deadline=None)  # timing varies on a shared machine
@given(
    name=st.sampled_from(["window", "break_duration", "max_break_duration"]),
    value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6)),
)
def test_durations_and_windows_are_finite_and_positive(name: str, value: float) -> None:
    kwargs = {name: value}
    if name == "break_duration":
        kwargs["max_break_duration"] = sys.float_info.max
    if name == "max_break_duration":
        kwargs["break_duration"] = 5e-324
    if math.isfinite(value) and value > 0:
        assert getattr(CircuitBreaker(**kwargs), name) == value
    else:
        with pytest.raises(ValueError, match=rf"{name}=.*E\.g\. {name}="):
            CircuitBreaker(**kwargs)


@settings(deadline=None)  # timing varies on a shared machine
@given(value=not_numbers)
def test_durations_refuse_bools_and_non_numbers(value: object) -> None:
    with pytest.raises(TypeError, match=r"window=\.\.\.\) must be a number"):
        CircuitBreaker(window=value)  # type: ignore[arg-type]


@settings(deadline=None)  # timing varies on a shared machine
@given(brk=st.floats(min_value=1e-3, max_value=1e6), cap=st.floats(min_value=1e-3, max_value=1e6))
def test_max_break_duration_must_be_at_least_break_duration(brk: float, cap: float) -> None:
    if cap >= brk:
        assert CircuitBreaker(break_duration=brk, max_break_duration=cap).max_break_duration == cap
    else:
        with pytest.raises(ValueError, match="raise max_break_duration or lower break_duration"):
            CircuitBreaker(break_duration=brk, max_break_duration=cap)


# -- the strategy's hooks ------------------------------------------------------------------------


@dataclass
class FakeCall:
    call_id: int
    probing: str | None = None
    clamped: bool = False  # the call's deadline cut the attempt's timeout


def status_error(code: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = H.Request("POST", "https://fake.test/v1/chat/completions")
    response = H.Response(code, headers=headers or {}, request=request)
    return openai.APIStatusError(f"fake {code}", response=response, body=None)


def timeout_error() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=H.Request("POST", "https://fake.test"))


@pytest.mark.parametrize(
    ("exc", "counts"),
    [
        (status_error(500), True),
        (status_error(503), True),
        (status_error(429), True),
        (status_error(408), True),
        (status_error(409), True),
        (status_error(401), True),
        (status_error(403), True),
        (timeout_error(), True),
        (status_error(400), None),
        (status_error(404), None),
        (status_error(422), None),
        (ValueError("not the SDK's"), None),
    ],
)
def test_classification_of_outcomes(exc: Exception, counts: bool | None) -> None:
    assert counts_against_model(exc) is counts


def strategy(report: list[Transition] | None = None, **options: float) -> CircuitBreakerStrategy:
    return CircuitBreakerStrategy(
        CircuitBreaker(consecutive_failures=2, break_duration=10.0, **options),  # type: ignore[arg-type]
        [A, B],
        retry_after_cap=60.0,
        report=None if report is None else report.append,
    )


def test_strategy_ignored_statuses_never_open_and_refusals_do() -> None:
    s = strategy()
    call = FakeCall(1)
    for _ in range(10):
        s.attempt_failed(call, A, status_error(400), 0.0)
        s.attempt_failed(call, A, status_error(422), 0.0)
        s.attempt_failed(call, A, RuntimeError("bug"), 0.0)
    assert s.admit(call, A, 0.0) == "admit"
    s.attempt_failed(call, A, status_error(401), 0.0)
    assert s.allow_retry(call, A, 1.0, 0.0)
    s.attempt_failed(call, A, status_error(403), 0.0)
    assert not s.allow_retry(call, A, 1.0, 0.0)  # opened: fall back at once
    assert not s.readmit(call, A, 0.5)
    assert s.admit(FakeCall(2), A, 1.0) == "skip"
    assert s.admit(FakeCall(2), B, 1.0) == "admit"


def test_strategy_probe_round_trip_and_reporting() -> None:
    seen: list[Transition] = []
    s = strategy(seen)
    s.attempt_failed(FakeCall(1), A, status_error(500), 0.0)
    s.attempt_failed(FakeCall(1), A, status_error(500), 0.0)
    probe = FakeCall(2)
    assert s.admit(probe, A, 10.0) == "probe"
    probe.probing = A
    assert s.admit(FakeCall(3), A, 10.0) == "skip"
    s.attempt_failed(probe, A, timeout_error(), 10.5)
    assert [t.after for t in seen] == ["open", "half_open", "open"]
    assert seen[-1].break_duration == 20.0
    probe2 = FakeCall(4, probing=A)
    assert s.admit(probe2, A, 30.5) == "probe"
    s.attempt_succeeded(probe2, A, 31.0)
    assert seen[-1].after == "closed"
    assert s.health(31.0)[A].state == "closed"  # type: ignore[attr-defined]


def test_strategy_abandoned_probe_releases_the_lease() -> None:
    s = strategy()
    s.attempt_failed(FakeCall(1), A, status_error(500), 0.0)
    s.attempt_failed(FakeCall(1), A, status_error(500), 0.0)
    probe = FakeCall(2)
    assert s.admit(probe, A, 10.0) == "probe"
    probe.probing = A
    s.attempt_abandoned(probe, A)
    assert s.admit(FakeCall(3), A, 10.0) == "probe"


def test_strategy_retry_after_beyond_the_manager_cap_opens() -> None:
    s = strategy()
    s.attempt_failed(FakeCall(1), A, status_error(429, {"retry-after": "90"}), 0.0)
    assert s.admit(FakeCall(2), A, 89.0) == "skip"
    assert s.admit(FakeCall(2), A, 90.0) == "probe"


def test_strategy_last_resort_probes_the_break_that_ends_soonest() -> None:
    s = strategy()
    for at, key in ((0.0, A), (1.0, B)):
        s.attempt_failed(FakeCall(1), key, status_error(500), at)
        s.attempt_failed(FakeCall(1), key, status_error(500), at)
    call = FakeCall(5)
    assert s.admit(call, A, 2.0) == "skip"
    assert s.admit(call, B, 2.0) == "skip"
    assert s.last_resort(call, [B, A], 2.0) == A
    call.probing = A
    s.attempt_succeeded(call, A, 2.5)
    assert s.admit(FakeCall(6), A, 3.0) == "admit"
    assert s.last_resort(FakeCall(7), ["openai/unknown"], 3.0) is None


def test_transitions_are_logged_with_figures_never_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = strategy()
    caplog.set_level("INFO", logger="notdiamond")
    s.attempt_failed(FakeCall(1), A, status_error(500), 0.0)
    s.attempt_failed(FakeCall(1), A, status_error(500), 0.0)
    call = FakeCall(2)
    s.admit(call, A, 10.0)
    call.probing = A
    s.attempt_succeeded(call, A, 10.0)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels[0][0] == "WARNING"
    assert levels[0][1] == (
        "circuit breaker for openai/a opened: 2 failures in a row; skipping it for 10.000s"
    )
    assert levels[-1] == (
        "INFO",
        "circuit breaker for openai/a closed (probe succeeded)",
    )


# -- agreement with the reference model ----------------------------------------------------------

KEYS = ("k0", "k1")


@st.composite
def traces(draw: st.DrawFn) -> tuple[BreakerConfig, list[object]]:
    config = BreakerConfig(
        consecutive_failures=draw(st.integers(1, 4)),
        failure_ratio=draw(st.sampled_from([0.1, 0.25, 0.5, 0.7, 1.0])),
        minimum_calls=draw(st.integers(1, 6)),
        window=draw(st.sampled_from([0.5, 1.0, 3.0])),
        break_duration=draw(st.sampled_from([0.25, 1.0, 2.0])),
        max_break_duration=draw(st.sampled_from([2.0, 4.0, 8.0])),
        retry_after_cap=draw(st.sampled_from([0.5, 5.0, math.inf])),
    )
    # The runtime's probe lease is the longest break (the in-process store's choice).
    config = dataclasses.replace(config, probe_lease=config.max_break_duration)
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from(
                    [0.0, 0.0, 0.125, 0.25, 0.5, 1.0, 2.0]
                ),  # exact: boundaries are hit
                st.sampled_from(
                    ["attempt", "attempt", "admit", "admit", "outcome", "query", "last_resort"]
                ),
                st.sampled_from(KEYS),
                st.sampled_from(
                    ["success", "success", "failure", "failure", "failure", "ignored", "abandoned"]
                ),
                st.sampled_from([None, None, None, 0.3, 1.0, 10.0]),
                st.integers(0, 10**6),  # picks an open ticket
            ),
            max_size=120,
        )
    )
    events: list[object] = []
    now = 0.0
    live: list[tuple[str, int]] = []  # admitted tickets whose outcome is pending
    ticket = 0
    for advance, what, key, kind, retry_after, pick in steps:
        now += advance
        if what == "attempt":  # admitted, and its outcome at once
            ticket += 1
            events.append(Admit(now, key, ticket))
            events.append(Outcome(now, key, ticket, kind, retry_after))  # type: ignore[arg-type]
        elif what == "admit":
            ticket += 1
            events.append(Admit(now, key, ticket))
            live.append((key, ticket))
        elif what == "last_resort":
            ticket += 1
            events.append(LastResort(now, KEYS if pick % 2 else KEYS[::-1], ticket))
            live.append(("?", ticket))
        elif what == "query":
            events.append(IsClosed(now, key))
        elif live:
            k, t = live[-1] if pick % 2 else live[pick % len(live)]  # mostly the latest
            if pick % 3:
                live.remove((k, t))
            events.append(Outcome(now, k, t, kind, retry_after))  # type: ignore[arg-type]
    return config, events


class RuntimeReplay:
    """Drives the runtime's strategy (and its circuits) with the same events, through its hooks."""

    def __init__(self, config: BreakerConfig) -> None:
        self.changes: list[Change] = []
        self.strategy = CircuitBreakerStrategy(
            CircuitBreaker(
                consecutive_failures=config.consecutive_failures,
                failure_ratio=config.failure_ratio,
                minimum_calls=config.minimum_calls,
                window=config.window,
                break_duration=config.break_duration,
                max_break_duration=config.max_break_duration,
            ),
            KEYS,
            retry_after_cap=config.retry_after_cap,
            report=self._changed,
        )
        self.calls: dict[int, tuple[str, FakeCall]] = {}  # ticket -> (key, the call)

    def _changed(self, t: Transition) -> None:
        self.changes.append(Change(t.at, t.key, t.after, t.until))

    def step(self, event: object) -> list[Decision | Change]:
        self.changes = []
        out: list[Decision | Change] = []
        s = self.strategy
        if isinstance(event, Admit):
            call = FakeCall(event.ticket)
            decision = s.admit(call, event.key, event.at)
            if decision == "probe":
                call.probing = event.key
            self.calls[event.ticket] = (event.key, call)
            out.append(Decision(event.at, event.key, decision))
        elif isinstance(event, LastResort):
            call = FakeCall(event.ticket)
            key = s.last_resort(call, event.skipped, event.at)
            assert key is not None
            call.probing = key
            self.calls[event.ticket] = (key, call)
            probed = (event.ticket, key) in s._probes
            out.append(Decision(event.at, key, "probe" if probed else "admit"))
        elif isinstance(event, IsClosed):
            closed = s.readmit(FakeCall(0), event.key, event.at)
            assert closed == s.allow_retry(FakeCall(0), event.key, 1.0, event.at)
            out.append(Decision(event.at, event.key, "closed" if closed else "not_closed"))
        else:
            assert isinstance(event, Outcome)
            key, call = self.calls[event.ticket]
            if event.kind == "success":
                s.attempt_succeeded(call, key, event.at)
            elif event.kind == "failure":
                headers = (
                    {} if event.retry_after is None else {"retry-after": str(event.retry_after)}
                )
                s.attempt_failed(call, key, status_error(503, headers), event.at)
            elif event.kind == "ignored":
                s.attempt_failed(call, key, status_error(400), event.at)
            else:
                s.attempt_abandoned(call, key)
        return [*self.changes, *out]


def reference_step(ref: ReferenceBreaker, event: object, keys: dict[int, str]) -> list[object]:
    if isinstance(event, Outcome) and event.key == "?":
        event = Outcome(event.at, keys[event.ticket], event.ticket, event.kind, event.retry_after)
    result = ref.step(event)  # type: ignore[arg-type]
    if isinstance(event, LastResort):
        chosen = next(r for r in result if isinstance(r, Decision))
        assert chosen.key is not None
        keys[event.ticket] = chosen.key
    return list(result)


@settings(max_examples=400, deadline=None)
@given(traces())
def test_reference_model_and_runtime_agree_on_random_traces(
    case: tuple[BreakerConfig, list[object]],
) -> None:
    config, events = case
    ref = ReferenceBreaker(config)
    run = RuntimeReplay(config)
    keys: dict[int, str] = {}
    for event in events:
        expected = reference_step(ref, event, keys)
        got = run.step(event)
        assert sorted(map(repr, got)) == sorted(map(repr, expected)), event


def test_window_boundary_an_outcome_exactly_window_old_is_out() -> None:
    c = make(consecutive_failures=100, minimum_calls=2, failure_ratio=1.0, window=4.0)
    c.success(0.0)
    c.failure(3.5)  # 1 of 2
    assert c.state == "closed"
    c.failure(4.0)  # the t=0 success is exactly window old: out; 2 of 2
    assert c.state == "open"
