"""The retry budget: its sliding-window state on an injected clock, its options, its strategy, and
agreement with the harness's independent reference model on random traces."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.reference.budget import BudgetConfig, ReferenceBudget
from notdiamond._health.budget import BudgetState
from notdiamond._health.store import BudgetPort, InProcessStore
from notdiamond._strategies.budget import RetryBudget, RetryBudgetStrategy, retry_budget_option

A = "openai/a"


def test_floor_allows_min_per_second_times_window_retries_without_traffic() -> None:
    b = BudgetState(A, ratio=0.2, min_per_second=0.5, window=4.0)  # floor: 2 retries
    assert b.try_retry(0.0)
    assert b.try_retry(0.0)
    assert not b.try_retry(0.0)
    assert not b.try_retry(3.999)
    assert b.try_retry(4.0)  # the t=0 retries left the window (t > now - window)


def test_ratio_of_first_attempts_within_the_window() -> None:
    b = BudgetState(A, ratio=0.2, min_per_second=0.0, window=10.0)
    for _ in range(10):
        b.first_attempt(0.0)
    assert b.try_retry(1.0)
    assert b.try_retry(1.0)
    assert not b.try_retry(1.0)  # 2 = 0.2 * 10
    h = b.health(1.0)
    assert (h.first_attempts, h.retries, h.allowed) == (10, 2, 2.0)
    # A refused retry spends nothing; at t=10 the first attempts have left the window.
    assert not b.try_retry(10.0)
    assert b.health(10.0).first_attempts == 0


def test_zero_ratio_and_zero_floor_never_retry() -> None:
    b = BudgetState(A, ratio=0.0, min_per_second=0.0, window=1.0)
    b.first_attempt(0.0)
    assert not b.try_retry(0.0)


def test_first_attempts_are_pruned_so_memory_stays_bounded() -> None:
    b = BudgetState(A, ratio=0.2, min_per_second=1.0, window=1.0)
    for i in range(10_000):
        b.first_attempt(i * 0.01)
    assert len(b._firsts) <= 2 * 256 + 1


def test_store_hands_out_one_budget_per_key() -> None:
    store = InProcessStore()
    first = store.budget(A, RetryBudget())
    assert store.budget(A, RetryBudget()) is first
    assert isinstance(first, BudgetPort)


# -- options -------------------------------------------------------------------------------------


def test_defaults_and_option_parsing() -> None:
    assert RetryBudget() == RetryBudget(ratio=0.2, min_per_second=1.0, window=10.0)
    assert retry_budget_option(True) == RetryBudget()
    assert retry_budget_option(None) is None
    assert retry_budget_option(False) is None
    with pytest.raises(TypeError, match=r"RetryBudget\(\.\.\.\), True"):
        retry_budget_option(0.2)


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6))
not_numbers = st.one_of(st.booleans(), st.text(max_size=3), st.none())


@settings(deadline=None)  # timing varies on a shared machine
@given(name=st.sampled_from(["ratio", "min_per_second"]), value=numbers)
def test_ratio_and_min_per_second_are_finite_and_non_negative(name: str, value: float) -> None:
    if math.isfinite(value) and value >= 0:
        assert getattr(RetryBudget(**{name: value}), name) == value
    else:
        with pytest.raises(ValueError, match=rf"RetryBudget\({name}=.*E\.g\. {name}="):
            RetryBudget(**{name: value})


@settings(deadline=None)  # timing varies on a shared machine
@given(value=numbers)
def test_window_is_finite_and_positive(value: float) -> None:
    if math.isfinite(value) and value > 0:
        assert RetryBudget(window=value).window == value
    else:
        with pytest.raises(ValueError, match=r"window=\.\.\.\) must be"):
            RetryBudget(window=value)


@settings(deadline=None)  # timing varies on a shared machine
@given(name=st.sampled_from(["ratio", "min_per_second", "window"]), value=not_numbers)
def test_bools_and_non_numbers_are_refused(name: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"RetryBudget\({name}=\.\.\.\) must be a number"):
        RetryBudget(**{name: value})  # type: ignore[arg-type]


# -- the strategy --------------------------------------------------------------------------------


@dataclass
class FakeCall:
    call_id: int
    probing: str | None = None


def test_strategy_counts_first_attempts_and_spends_on_allowed_retries() -> None:
    s = RetryBudgetStrategy(RetryBudget(ratio=0.5, min_per_second=0.0, window=10.0), [A])
    for i in range(4):
        s.attempt_started(FakeCall(i), A, 1, 0.0)
        s.attempt_started(FakeCall(i), A, 2, 0.0)  # retries are not first attempts
    assert [s.allow_retry(FakeCall(9), A, 1.0, 0.5) for _ in range(3)] == [True, True, False]
    assert s.health(0.5)[A] == s.budgets[A].health(0.5)


# -- agreement with the reference model ----------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    config=st.builds(
        BudgetConfig,
        ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0]),
        min_per_second=st.sampled_from([0.0, 0.25, 1.0]),
        window=st.sampled_from([0.5, 1.0, 4.0]),
    ),
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0]), st.booleans()),
        max_size=200,
    ),
)
def test_reference_model_and_runtime_agree_on_random_traces(
    config: BudgetConfig, steps: list[tuple[float, bool]]
) -> None:
    ref = ReferenceBudget(config)
    runtime = BudgetState(
        "k", ratio=config.ratio, min_per_second=config.min_per_second, window=config.window
    )
    now = 0.0
    for advance, is_first in steps:
        now += advance
        if is_first:
            ref.first_attempt(now, "k")
            runtime.first_attempt(now)
        else:
            assert runtime.try_retry(now) == ref.retry(now, "k")


# -- end to end, through the SDK, with concurrent async calls ------------------------------------


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_budget_in_a_concurrent_outage_storm_agrees_with_the_reference() -> None:
    import asyncio
    import contextlib

    import openai

    import notdiamond
    from chaos.reference.recorder import BudgetRecorder, budget_disagreements
    from tests.fakes import USER, FakeProvider, status

    fake = FakeProvider()
    serve = fake.handle

    async def slow(request: object) -> object:
        await request.aread()  # type: ignore[attr-defined]
        await asyncio.sleep(0.2)
        return serve(request)

    fake.handle_async = slow  # type: ignore[assignment,method-assign]
    client = fake.async_openai()
    loop = asyncio.get_running_loop()
    budget = RetryBudget(ratio=0.2, min_per_second=0.5, window=5.0)
    manager = notdiamond.init(
        [client, fake.async_azure()],
        models=["openai/gpt-4o", "azure/gpt-4o"],
        max_retries=4,
        backoff=0.3,
        clock=loop.time,
        retry_budget=budget,
    )
    (strategy,) = manager.strategies
    recorder = BudgetRecorder(strategy)
    fake.always("openai/gpt-4o", status(503), 100_000)

    async def call() -> None:
        with contextlib.suppress(openai.OpenAIError):
            await client.chat.completions.create(model="notdiamond", messages=USER)

    tasks = []
    for _ in range(300):  # 20 calls/s for 15 s, overlapping
        tasks.append(asyncio.create_task(call()))
        await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    manager.close()

    steps = recorder.steps
    config = BudgetConfig(budget.ratio, budget.min_per_second, budget.window)
    assert budget_disagreements(steps, config) == []
    granted = [s for s in steps if s.granted]
    assert granted
    assert any(s.granted is False for s in steps)
    # The bound itself, at every granted retry: retries in (t - window, t] <= ratio * first
    # attempts there + min_per_second * window.
    for g in granted:

        def within(s: object, at: float = g.at) -> bool:
            return at - budget.window < s.at <= at  # type: ignore[attr-defined]

        retries = sum(1 for s in granted if s.key == g.key and within(s))
        firsts = sum(1 for s in steps if s.first and s.key == g.key and within(s))
        assert retries <= budget.ratio * firsts + budget.min_per_second * budget.window
    primary = fake.count("openai/gpt-4o")
    assert primary <= 300 * (1 + budget.ratio) + budget.min_per_second * budget.window * 4
