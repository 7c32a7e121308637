"""The breaker's success path (issue 12 §1: at most +0.5 µs per call with the breaker on).

A closed breaker admits a call by one set lookup (``FastPath.unsettled``: the keys whose breaker is
not closed, kept by the circuits) and a success on it is counted without dispatching the hook
(``FastPath.succeeded``); a call that nothing else times reads the clock once, when its attempt
ends. These tests pin that the fast path is taken and that it changes nothing: the same seeded run
with the fast path switched off makes the same requests, decisions, transitions and counts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import openai
import pytest

import notdiamond
from notdiamond._health.circuit import CLOSED, Circuit
from notdiamond._health.store import InProcessStore
from notdiamond._strategies.breaker import CircuitBreakerStrategy
from notdiamond._strategy import NO_FAST_PATH, FastPath
from tests.fakes import (
    USER,
    AsyncSleepRecorder,
    FakeProvider,
    SleepRecorder,
    ok,
    read_timeout,
    status,
)

MODELS = {"openai/gpt-4o": 0.5, "openai/gpt-4o-mini": 0.3, "azure/gpt-4o": 0.2}
OPTIONS = notdiamond.CircuitBreaker(
    consecutive_failures=3,
    failure_ratio=0.5,
    minimum_calls=6,
    window=5.0,
    break_duration=2.0,
    max_break_duration=8.0,
)
A = "openai/gpt-4o"


def _faults(
    now: Callable[[], float], rng: random.Random, outage: tuple[float, float] | None
) -> Any:
    replies = [
        (0.6, ok()),
        (0.2, status(503)),
        (0.05, status(400)),
        (0.04, status(401)),
        (0.03, status(429, {"retry-after": "10"})),  # beyond the cap: opens for 10 s
        (0.08, read_timeout()),
    ]

    def reply(request: Any) -> Any:
        if outage is not None and outage[0] <= now() < outage[1]:
            return status(503)(request)
        pick = rng.random()
        for share, each in replies:
            if pick < share:
                return each(request)
            pick -= share
        return ok()(request)

    return reply


def _breaker(manager: notdiamond.RetryManager) -> CircuitBreakerStrategy:
    (strategy,) = [s for s in manager.strategies if isinstance(s, CircuitBreakerStrategy)]
    return strategy


class _Counting:
    """The manager's clock, counting its reads."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.clock()


def _run(
    fast: bool, is_async: bool, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> dict[str, list[Any]]:
    """A seeded run through the real SDK; everything a user or a dashboard could see of it."""
    if not fast:
        monkeypatch.setattr(CircuitBreakerStrategy, "fast_path", lambda self: NO_FAST_PATH)
    fake = FakeProvider()
    sleeps = AsyncSleepRecorder() if is_async else SleepRecorder()
    rng = random.Random(7)
    fake.always(A, _faults(sleeps.clock, rng, outage=(10.0, 30.0)), 100_000)
    fake.always("openai/gpt-4o-mini", _faults(sleeps.clock, rng, outage=None), 100_000)
    fake.always("azure/gpt-4o", _faults(sleeps.clock, rng, outage=(20.0, 25.0)), 100_000)
    clients = (
        [fake.async_openai(), fake.async_azure()] if is_async else [fake.openai(), fake.azure()]
    )
    manager = notdiamond.init(
        clients,
        models=MODELS,
        max_retries=3,
        backoff=0.5,
        seed=3,
        clock=sleeps.clock,
        sleep=sleeps,
        retry_after_cap=3.0,
        circuit_breaker=OPTIONS,
        async_mode=is_async,
    )
    pipeline = manager.wrappers["openai"].pipeline
    assert (pipeline.asked_about is not None) is fast  # the fast path is what is compared
    seen: dict[str, list[Any]] = {"calls": [], "health": []}
    caplog.clear()

    async def one() -> Any:
        return await clients[0].chat.completions.create(model="notdiamond", messages=USER)

    for _ in range(400):
        sleeps.now += 0.1
        try:
            if is_async:
                reply = asyncio.run(one())
            else:
                reply = clients[0].chat.completions.create(model="notdiamond", messages=USER)
            seen["calls"].append(("ok", reply.model, sleeps.now))
        except openai.OpenAIError as exc:
            seen["calls"].append(("error", type(exc).__name__, sleeps.now))
        seen["health"].append(sorted(manager.health().items()))
    seen["sent"] = fake.keys()
    seen["waits"] = list(sleeps.waits)
    seen["transitions"] = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("circuit breaker")
    ]
    manager.close()
    return seen


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_the_fast_path_changes_nothing_on_a_whole_run(
    is_async: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notdiamond")
    fast = _run(True, is_async, monkeypatch, caplog)
    dispatched = _run(False, is_async, monkeypatch, caplog)
    assert fast == dispatched
    states = {h.state for each in fast["health"] for _, h in each}
    assert states == {"closed", "open", "half_open"}  # the run opened and closed breakers
    assert len(fast["transitions"]) > 10
    assert {kind for kind, _, _ in fast["calls"]} == {"ok", "error"}


def test_a_success_on_a_closed_breaker_reads_the_clock_once_and_dispatches_nothing(
    fake: FakeProvider, sleeps: SleepRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Counting(sleeps.clock)
    client = fake.openai()
    manager = notdiamond.init(client, models=[A], clock=clock, sleep=sleeps, circuit_breaker=True)
    hooks: list[str] = []
    for hook in ("admit", "attempt_succeeded"):
        original = getattr(CircuitBreakerStrategy, hook)

        def counted(self: Any, *args: Any, _hook: str = hook, _original: Any = original) -> Any:
            hooks.append(_hook)
            return _original(self, *args)

        monkeypatch.setattr(CircuitBreakerStrategy, hook, counted)
    for n in range(1, 4):
        sleeps.now = float(n)
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert clock.reads == 3  # one per call: when its attempt ended
    assert hooks == []
    health = manager.health()[A].breaker
    assert health is not None
    assert (health.state, health.calls, health.failures) == ("closed", 3, 0)
    assert list(_breaker(manager).circuits[A]._ok) == [1.0, 2.0, 3.0]  # type: ignore[attr-defined]


def test_an_observer_or_a_deadline_still_sees_when_the_call_started(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    events: list[notdiamond.AttemptEvent] = []
    client = fake.openai()
    notdiamond.init(
        client,
        models=[A],
        clock=sleeps.clock,
        sleep=sleeps,
        circuit_breaker=True,
        observer=lambda e: events.append(e) if isinstance(e, notdiamond.AttemptEvent) else None,
    )
    sleeps.now = 5.0
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert [(e.started, e.decision, e.call_id > 0) for e in events] == [(5.0, "success", True)]
    with notdiamond.deadline(0.5):
        fake.script(A, status(503))
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="notdiamond", messages=USER)  # backoff > time left


def test_a_call_that_fails_after_the_fast_start_gets_its_own_id(
    fake: FakeProvider, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notdiamond")
    client = fake.openai()
    manager = notdiamond.init(
        client, models=[A], max_retries=2, clock=sleeps.clock, sleep=sleeps, circuit_breaker=True
    )
    for n in range(2):
        fake.script(A, status(503))  # the first attempt fails, the retry answers
        sleeps.now = 10.0 * n
        client.chat.completions.create(model="notdiamond", messages=USER)
    ids = [getattr(r, "notdiamond_call_id", None) for r in caplog.records if "attempt" in r.msg]
    assert len(ids) == 2
    assert ids[0] != ids[1]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    health = manager.health()[A].breaker
    assert health is not None
    assert (health.calls, health.failures, health.consecutive) == (4, 2, 0)


def test_not_closed_holds_exactly_the_breakers_that_are_not_closed() -> None:
    store = InProcessStore()
    a = store.circuit(A, OPTIONS)
    b = store.circuit("azure/gpt-4o", OPTIONS)
    assert a.not_closed is b.not_closed is store.not_closed
    assert store.not_closed == set()
    for _ in range(3):
        a.failure(1.0)
    assert a.state == "open"
    assert store.not_closed == {A}
    b.failure(1.0, retry_after=100.0)  # beyond the (infinite) cap: nothing
    assert store.not_closed == {A}
    assert a.admit(2.0) == ("skip", 0)
    decision, token = a.admit(3.0)  # the break ended: half-open, the probe
    assert (decision, a.state) == ("probe", "half_open")
    assert store.not_closed == {A}
    a.failure(3.5, token=token)  # the probe failed: open again
    assert a.state == "open"
    assert store.not_closed == {A}
    decision, token = a.admit(8.0)
    a.success(8.5, token)
    assert a.state is CLOSED
    assert store.not_closed == set()
    token = a.force_probe(9.0)  # closed: no probe to force
    assert token == 0
    assert store.not_closed == set()


def test_a_standalone_circuit_keeps_its_own_set() -> None:
    circuit = Circuit(
        A,
        consecutive_failures=1,
        failure_ratio=1.0,
        minimum_calls=1,
        window=1.0,
        break_duration=1.0,
        max_break_duration=1.0,
    )
    circuit.failure(0.0)
    assert circuit.not_closed == {A}


def test_the_pipeline_asks_when_a_key_is_not_closed(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    """The gate is the live set: an open breaker is skipped, a closed one is not asked about."""
    client = fake.openai()
    manager = notdiamond.init(
        client,
        models=[A, "openai/gpt-4o-mini"],
        max_retries=1,
        clock=sleeps.clock,
        sleep=sleeps,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=2, break_duration=10.0),
    )
    pipeline = manager.wrappers["openai"].pipeline
    strategy = _breaker(manager)
    assert pipeline.asked_about is strategy.circuits[A].not_closed  # type: ignore[attr-defined]
    assert pipeline.count_success is strategy.record_success
    fake.script(A, status(503), status(503))
    for _ in range(3):
        reply = client.chat.completions.create(model="notdiamond", messages=USER)
        assert reply.model == "gpt-4o-mini"
    assert fake.keys() == [A, "openai/gpt-4o-mini", A, "openai/gpt-4o-mini", "openai/gpt-4o-mini"]
    assert pipeline.asked_about == {A}


def test_a_strategy_without_a_fast_path_is_dispatched(
    fake: FakeProvider, sleeps: SleepRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CircuitBreakerStrategy, "fast_path", lambda self: FastPath())
    client = fake.openai()
    manager = notdiamond.init(
        client, models=[A], clock=sleeps.clock, sleep=sleeps, circuit_breaker=True
    )
    pipeline = manager.wrappers["openai"].pipeline
    assert (pipeline.asked_about, pipeline.unsettled, pipeline.count_success) == (None, None, None)
    client.chat.completions.create(model="notdiamond", messages=USER)
    breaker = manager.health()[A].breaker
    assert breaker is not None
    assert breaker.calls == 1
