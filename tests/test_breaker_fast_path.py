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
    sse,
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
    now: Callable[[], float],
    rng: random.Random,
    outage: tuple[float, float] | None,
    good: Any = None,
) -> Any:
    good = ok() if good is None else good
    replies = [
        (0.6, good),
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
        return good(request)

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
    fast: bool,
    is_async: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
    stream: bool = False,
    **options: Any,
) -> dict[str, list[Any]]:
    """A seeded run through the real SDK; everything a user or a dashboard could see of it.

    ``stream``: every call streams (read to its end); ``options``: more ``init`` options."""
    monkeypatch.undo()
    if not fast:
        monkeypatch.setattr(CircuitBreakerStrategy, "fast_path", lambda self: NO_FAST_PATH)
    fake = FakeProvider()
    sleeps = AsyncSleepRecorder() if is_async else SleepRecorder()
    rng = random.Random(7)
    good = sse() if stream else None
    fake.always(A, _faults(sleeps.clock, rng, (10.0, 30.0), good), 100_000)
    fake.always("openai/gpt-4o-mini", _faults(sleeps.clock, rng, None, good), 100_000)
    fake.always("azure/gpt-4o", _faults(sleeps.clock, rng, (20.0, 25.0), good), 100_000)
    events: list[Any] = []
    if options.pop("observer", False):
        options["observer"] = lambda e: events.append(
            (e.model, e.attempt, e.started, e.finished, e.decision, e.wait_before, e.next_wait)
            if hasattr(e, "call_id")
            else repr(e)
        )
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
        **options,
    )
    pipeline = manager.wrappers["openai"].pipeline
    # the fast path is what is compared (options that time every call leave it the admission
    # by set lookup and the success without dispatch)
    assert (pipeline.unsettled is not None) is fast
    if not options:
        assert (pipeline.asked_about is not None) is fast
    seen: dict[str, list[Any]] = {"calls": [], "health": []}
    caplog.clear()

    async def one() -> Any:
        reply = await clients[0].chat.completions.create(
            model="notdiamond", messages=USER, stream=stream
        )
        if not stream:
            return reply
        chunks = [chunk async for chunk in reply]  # read to the end
        return chunks[0]

    def one_sync() -> Any:
        reply = clients[0].chat.completions.create(model="notdiamond", messages=USER, stream=stream)
        if not stream:
            return reply
        chunks = list(reply)  # read to the end
        return chunks[0]

    for _ in range(400):
        sleeps.now += 0.1
        try:
            reply = asyncio.run(one()) if is_async else one_sync()
            seen["calls"].append(("ok", reply.model, sleeps.now))
        except openai.OpenAIError as exc:
            seen["calls"].append(("error", type(exc).__name__, sleeps.now))
        seen["health"].append(sorted(manager.health().items()))
    seen["sent"] = fake.keys()
    seen["waits"] = list(sleeps.waits)
    seen["events"] = events
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


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("stream", "options"),
    [
        (True, {"first_chunk_timeout": 2.0, "retry_budget": True}),
        (False, {"deadline": 4.0, "observer": True}),
    ],
    ids=["streams-budget", "deadline-observer"],
)
def test_the_fast_path_changes_nothing_beside_the_other_strategies(
    is_async: bool,
    stream: bool,
    options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Streams, the retry budget, a deadline and an observer each change what the fast path may
    skip (the call's start on the clock, its id, the attempt-start hooks): still the same run."""
    caplog.set_level(logging.INFO, logger="notdiamond")
    fast = _run(True, is_async, monkeypatch, caplog, stream, **options)
    dispatched = _run(False, is_async, monkeypatch, caplog, stream, **options)
    assert fast == dispatched
    assert {kind for kind, _, _ in fast["calls"]} == {"ok", "error"}
    assert len(fast["transitions"]) > 10
    assert bool(fast["events"]) == ("observer" in options)


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


async def _hedged_run(fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """300 overlapping async calls with hedging, a deadline and the breaker, on virtual time."""
    from tests.test_hedging import SlowProvider

    monkeypatch.undo()
    if not fast:
        monkeypatch.setattr(CircuitBreakerStrategy, "fast_path", lambda self: NO_FAST_PATH)
    slow = SlowProvider()
    rng = random.Random(11)
    for key in ("openai/gpt-4o", "azure/gpt-4o"):
        slow.latency(key, *[rng.choice([0.2, 0.5, 3.0, 8.0]) for _ in range(3000)])
        replies = [ok(), ok(), ok(), status(503), status(500)]
        slow.script(key, *[rng.choice(replies) for _ in range(3000)])
    client = slow.async_openai()
    loop = asyncio.get_running_loop()
    manager = notdiamond.init(
        [client, slow.async_azure()],
        models={"openai/gpt-4o": 0.6, "azure/gpt-4o": 0.4},
        clock=loop.time,
        hedge=notdiamond.Hedge(delay=1.0),
        circuit_breaker=OPTIONS,
        deadline=6.0,
        max_retries=2,
        backoff=0.5,
        seed=5,
    )
    assert (manager.wrappers["openai"].pipeline.unsettled is not None) is fast
    outcomes: list[tuple[Any, ...]] = []

    async def one(i: int) -> None:
        await asyncio.sleep(i * 0.3)
        try:
            reply = await client.chat.completions.create(model="notdiamond", messages=USER)
            outcomes.append((i, "ok", reply.model, loop.time()))
        except openai.OpenAIError as exc:
            outcomes.append((i, type(exc).__name__, loop.time()))

    await asyncio.gather(*(one(i) for i in range(300)))
    health = sorted((key, repr(h)) for key, h in manager.health().items())
    manager.close()
    return outcomes, health, slow.started, slow.cancelled


def test_the_fast_path_changes_nothing_for_overlapping_hedged_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls interleave on one event loop: admissions, hedge lanes, probes and successes of
    different calls alternate around the breakers' transitions (same seeds, same virtual time)."""
    from chaos.clock import run_virtual

    fast, _ = run_virtual(_hedged_run(True, monkeypatch))
    dispatched, _ = run_virtual(_hedged_run(False, monkeypatch))
    assert fast == dispatched
    outcomes, health, _, cancelled = fast
    assert {o[1] for o in outcomes} >= {"ok", "DeadlineExceeded"}
    assert cancelled  # hedges raced and their losers were cancelled
    assert any("last_opened=Transition" in h for _, h in health)  # breakers opened
