"""The runtime's circuit breaker agrees exactly with the independent reference model on whole runs
through the real SDK: every admit/skip/probe decision, every readmit/retry answer, every transition
and its time, in virtual time (seeded random faults, an outage of the primary, Retry-After)."""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import openai
import pytest

import notdiamond
from chaos.reference.breaker import Admit, IsClosed, LastResort
from chaos.reference.recorder import BreakerRecorder, config_of, disagreements
from notdiamond._strategies.breaker import CircuitBreakerStrategy
from tests.fakes import USER, FakeProvider, SleepRecorder, ok, read_timeout, status

MODELS = {"openai/gpt-4o": 0.5, "openai/gpt-4o-mini": 0.3, "azure/gpt-4o": 0.2}
OPTIONS = notdiamond.CircuitBreaker(
    consecutive_failures=3,
    failure_ratio=0.5,
    minimum_calls=6,
    window=5.0,
    break_duration=2.0,
    max_break_duration=8.0,
)
CAP = 3.0


def _faults(
    now: Callable[[], float], rng: random.Random, outage: tuple[float, float] | None
) -> Any:
    """Seeded random replies; every reply is a 503 while ``now()`` is within ``outage``."""
    replies = [
        (0.55, ok()),
        (0.2, status(503)),
        (0.05, status(400)),
        (0.04, status(401)),
        (0.04, status(429, {"retry-after": "1"})),
        (0.02, status(429, {"retry-after": "10"})),  # beyond the cap: opens for 10 s
        (0.1, read_timeout()),
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


@pytest.mark.parametrize("deadline", [None, 3.0])
def test_runtime_and_reference_agree_on_a_whole_run(fake: FakeProvider, deadline) -> None:
    sleeps = SleepRecorder()
    rng = random.Random(12)
    client = fake.openai()
    manager = notdiamond.init(
        [client, fake.azure()],
        models=MODELS,
        max_retries=3,
        backoff=0.5,
        seed=3,
        clock=sleeps.clock,
        sleep=sleeps,
        retry_after_cap=CAP,
        deadline=deadline,
        circuit_breaker=OPTIONS,
    )
    (strategy,) = [s for s in manager.strategies if isinstance(s, CircuitBreakerStrategy)]
    recorder = BreakerRecorder(strategy)
    fake.always("openai/gpt-4o", _faults(sleeps.clock, rng, outage=(10.0, 30.0)), 100_000)
    fake.always("openai/gpt-4o-mini", _faults(sleeps.clock, rng, outage=None), 100_000)
    fake.always("azure/gpt-4o", _faults(sleeps.clock, rng, outage=(20.0, 25.0)), 100_000)
    for _ in range(500):
        sleeps.now += 0.1
        with contextlib.suppress(openai.OpenAIError):
            client.chat.completions.create(model="notdiamond", messages=USER)
    steps = recorder.steps
    assert disagreements(steps, config_of(OPTIONS, CAP)) == []
    # The run exercised every kind of decision and transition.
    answers = Counter(
        (type(s.event).__name__, s.answer) for s in steps if not hasattr(s.event, "kind")
    )
    changes = Counter(c.to for s in steps for c in s.changes)
    assert answers[(Admit.__name__, "skip")] > 0
    assert answers[(Admit.__name__, "probe")] > 0
    assert answers[(IsClosed.__name__, "not_closed")] > 0
    assert min(changes["open"], changes["half_open"], changes["closed"]) > 0
    assert any(isinstance(s.event, LastResort) for s in steps) or deadline is not None


def test_the_comparison_catches_a_runtime_that_opens_one_failure_late(fake: FakeProvider) -> None:
    sleeps = SleepRecorder()
    client = fake.openai()
    manager = notdiamond.init(
        [client, fake.azure()],
        models=list(MODELS),
        max_retries=1,
        clock=sleeps.clock,
        sleep=sleeps,
        circuit_breaker=OPTIONS,
    )
    (strategy,) = [s for s in manager.strategies if isinstance(s, CircuitBreakerStrategy)]
    for circuit in strategy.circuits.values():
        circuit.consecutive_failures += 1  # type: ignore[attr-defined]  # the broken runtime
    recorder = BreakerRecorder(strategy)
    fake.always("openai/gpt-4o", status(503), 50)
    for _ in range(10):
        sleeps.now += 0.1
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert disagreements(recorder.steps, config_of(OPTIONS, 60.0))


def test_a_call_made_while_the_probe_is_in_flight_skips_the_model(fake: FakeProvider) -> None:
    sleeps = SleepRecorder()
    client = fake.openai()
    manager = notdiamond.init(
        [client, fake.azure()],
        models=["openai/gpt-4o", "azure/gpt-4o"],
        max_retries=1,
        clock=sleeps.clock,
        sleep=sleeps,
        circuit_breaker=OPTIONS,
    )
    (strategy,) = [s for s in manager.strategies if isinstance(s, CircuitBreakerStrategy)]
    recorder = BreakerRecorder(strategy)
    nested: list[str] = []

    def primary(request: Any) -> Any:
        if sleeps.now >= 10.0 and not nested:  # the probe is in flight: another call comes in
            nested.append(client.chat.completions.create(model="notdiamond", messages=USER).model)
        return status(503)(request)

    fake.always("openai/gpt-4o", primary, 100)
    for _ in range(3):  # three failures in a row: open for 2 s
        client.chat.completions.create(model="notdiamond", messages=USER)
    sleeps.now = 10.0
    client.chat.completions.create(model="notdiamond", messages=USER)  # the probe
    assert fake.keys() == [
        *["openai/gpt-4o", "azure/gpt-4o"] * 3,
        "openai/gpt-4o",  # the probe (in flight)
        "azure/gpt-4o",  # the call made meanwhile skipped the primary
        "azure/gpt-4o",  # the probe failed: fallback
    ]
    assert disagreements(recorder.steps, config_of(OPTIONS, 60.0)) == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_concurrent_async_run_agrees_with_the_reference(fake: FakeProvider) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    rng = random.Random(5)
    serve = fake.handle

    async def slow(request: Any) -> Any:  # every answer takes 0.3 s of loop time
        await request.aread()
        await asyncio.sleep(0.3)
        return serve(request)

    fake.handle_async = slow  # type: ignore[method-assign]
    client = fake.async_openai()
    manager = notdiamond.init(
        [client, fake.async_azure()],
        models=MODELS,
        max_retries=3,
        backoff=0.5,
        seed=9,
        clock=loop.time,
        retry_after_cap=CAP,
        circuit_breaker=OPTIONS,
    )
    (strategy,) = [s for s in manager.strategies if isinstance(s, CircuitBreakerStrategy)]
    recorder = BreakerRecorder(strategy)
    start = loop.time()

    def elapsed() -> float:
        return loop.time() - start

    fake.always("openai/gpt-4o", _faults(elapsed, rng, (5.0, 20.0)), 100_000)
    fake.always("openai/gpt-4o-mini", _faults(elapsed, rng, None), 100_000)
    fake.always("azure/gpt-4o", _faults(elapsed, rng, (10.0, 14.0)), 100_000)

    async def call() -> None:
        with contextlib.suppress(openai.OpenAIError):
            await client.chat.completions.create(model="notdiamond", messages=USER)

    tasks = []
    for _ in range(400):  # 10 calls/s for 40 s, each taking 0.3 s or more: several in flight
        tasks.append(asyncio.create_task(call()))
        await asyncio.sleep(0.1)
    await asyncio.gather(*tasks)
    steps = recorder.steps
    assert disagreements(steps, config_of(OPTIONS, CAP)) == []
    answers = Counter(s.answer for s in steps if isinstance(s.event, Admit))
    changes = Counter(c.to for s in steps for c in s.changes)
    assert answers["skip"] > 0
    assert answers["probe"] > 0
    assert min(changes["open"], changes["half_open"], changes["closed"]) > 0
