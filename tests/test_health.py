"""Circuit breaker, retry budget and deadline end to end: through the real SDK (tests/fakes.py), on
the manager's injected clock and sleep."""

from __future__ import annotations

import openai
import pytest

import notdiamond
from tests.fakes import (
    USER,
    AsyncSleepRecorder,
    FakeProvider,
    SleepRecorder,
    read_timeout,
    status,
)

PRIMARY = "openai/gpt-4o"
BACKUP = "azure/gpt-4o"
TWO = [PRIMARY, BACKUP]


def _init(fake: FakeProvider, sleeps: SleepRecorder, **options: object) -> openai.OpenAI:
    client = fake.openai()
    notdiamond.init([client, fake.azure()], clock=sleeps.clock, sleep=sleeps, **options)  # type: ignore[arg-type]
    return client


def _ask(client: openai.OpenAI, **kwargs: object) -> str:
    reply = client.chat.completions.create(model="notdiamond", messages=USER, **kwargs)  # type: ignore[call-overload]
    return reply.model


def test_breaker_opens_skips_at_once_probes_after_the_break_and_closes(fake, sleeps) -> None:
    events: list[object] = []
    client = _init(
        fake,
        sleeps,
        models=TWO,
        max_retries=2,
        backoff=2.0,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=3, break_duration=10.0),
        observer=events.append,
    )
    fake.always(PRIMARY, status(503), 4)
    _ask(client)  # t=0 fails, waits 2 s, t=2 fails: falls back
    _ask(client)  # t=2: the third failure in a row opens it: falls back at once, no wait
    assert fake.keys() == [PRIMARY, PRIMARY, BACKUP, PRIMARY, BACKUP]
    assert sleeps.waits == [2.0]
    opened = [e for e in events if isinstance(e, notdiamond.BreakerTransition)]
    assert [(t.after, t.at, t.until) for t in opened] == [("open", 2.0, 12.0)]

    for _ in range(5):  # open: the primary is skipped, no request, no wait
        _ask(client)
    assert fake.keys()[5:] == [BACKUP] * 5
    assert sleeps.waits == [2.0]

    sleeps.now = 12.0  # the break ended: the next call probes with exactly one attempt
    _ask(client)
    assert fake.keys()[-2:] == [PRIMARY, BACKUP]
    assert sleeps.waits == [2.0]  # the probe's failure falls back at once
    reopened = [e for e in events if isinstance(e, notdiamond.BreakerTransition)][-1]
    assert (reopened.reason, reopened.break_duration) == ("probe_failed", 20.0)

    sleeps.now = 32.0  # the primary has recovered (its script is used up)
    assert _ask(client) == "gpt-4o"
    assert fake.keys()[-1] == PRIMARY
    changes = [(t.after, t.reason) for t in events if isinstance(t, notdiamond.BreakerTransition)]
    assert changes[-2:] == [("half_open", "break_ended"), ("closed", "probe_succeeded")]


def test_manager_health_reports_state_until_and_counts(fake, sleeps) -> None:
    client = fake.openai()
    manager = notdiamond.init(
        [client, fake.azure()],
        models=TWO,
        max_retries=1,
        clock=sleeps.clock,
        sleep=sleeps,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=2, break_duration=5.0),
        retry_budget=True,
    )
    fake.always(PRIMARY, status(500), 2)
    _ask(client)
    health = manager.health()
    assert health[PRIMARY].state == "closed"
    assert health[PRIMARY].breaker is not None
    assert (health[PRIMARY].breaker.consecutive, health[PRIMARY].breaker.failures) == (1, 1)
    assert health[BACKUP].breaker is not None
    assert health[BACKUP].breaker.calls == 1
    assert health[PRIMARY].budget is not None
    assert health[PRIMARY].budget.first_attempts == 1
    _ask(client)
    health = manager.health()
    assert (health[PRIMARY].state, health[PRIMARY].until) == ("open", 5.0)
    sleeps.now = 5.0
    assert manager.health()[PRIMARY].state == "half_open"
    plain = notdiamond.init(fake.openai(), models=[PRIMARY])
    assert plain.health()[PRIMARY] == notdiamond.ModelHealth(PRIMARY, "closed", None, None, None)


def test_ignored_statuses_never_open_the_breaker(fake, sleeps) -> None:
    client = _init(
        fake,
        sleeps,
        models=TWO,
        max_retries=1,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=1),
    )
    for code in (400, 404, 422):
        fake.script(PRIMARY, status(code))
        _ask(client)
    _ask(client)
    assert fake.keys() == [PRIMARY, BACKUP] * 3 + [PRIMARY]


def test_every_model_open_probes_the_one_whose_break_ends_soonest(fake, sleeps) -> None:
    client = _init(
        fake,
        sleeps,
        models=TWO,
        max_retries=1,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=1, break_duration=30.0),
    )
    fake.script(PRIMARY, status(500))
    fake.script(BACKUP, status(500))
    with pytest.raises(openai.InternalServerError):
        _ask(client)  # both open now (the backup's break ends at the same time, listed later)
    sleeps.now = 1.0
    assert _ask(client) == "gpt-4o"  # not refused: the primary is probed, and answers
    assert fake.keys() == [PRIMARY, BACKUP, PRIMARY]


def test_readmit_after_a_wait_falls_back_when_the_breaker_opened_meanwhile(fake) -> None:
    sleeps = SleepRecorder()
    client = fake.openai()
    nested: list[str] = []

    def sleep(seconds: float) -> None:
        sleeps(seconds)
        if not nested:  # during the first call's wait, two other calls fail on the primary
            nested.append("busy")
            for _ in range(2):
                client.chat.completions.create(model="notdiamond", messages=USER)

    notdiamond.init(
        [client, fake.azure()],
        models=TWO,
        max_retries=3,
        backoff=2.0,
        clock=sleeps.clock,
        sleep=sleep,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=3, break_duration=60.0),
    )
    fake.always(PRIMARY, status(503), 10)
    _ask(client)
    # The outer call fails at t=0 and waits. Meanwhile call A fails twice (the second failure is
    # the third in a row: the breaker opens, A falls back) and call B skips the primary. After its
    # wait the outer call is not retried on the primary: it falls back at once.
    assert fake.keys() == [PRIMARY, PRIMARY, PRIMARY, BACKUP, BACKUP, BACKUP]


def test_retry_after_beyond_the_cap_opens_the_breaker_for_that_long(fake, sleeps) -> None:
    client = _init(
        fake,
        sleeps,
        models=TWO,
        max_retries=3,
        retry_after_cap=60.0,
        circuit_breaker=True,
    )
    fake.script(PRIMARY, status(429, {"retry-after": "120"}))
    _ask(client)
    sleeps.now = 119.0
    _ask(client)
    sleeps.now = 120.0
    _ask(client)
    assert fake.keys() == [PRIMARY, BACKUP, BACKUP, PRIMARY]


def test_deadline_exceeded_reaches_except_api_timeout_error(fake, sleeps) -> None:
    client = _init(
        fake, sleeps, models=TWO, max_retries=1, deadline=5.0, circuit_breaker=True, timeout=60.0
    )
    fake.always(PRIMARY, read_timeout(), 1)
    fake.always(BACKUP, read_timeout(), 1)
    with pytest.raises(openai.APITimeoutError) as caught:  # what existing handlers catch
        _ask(client)
    assert isinstance(caught.value, notdiamond.DeadlineExceeded)


def test_a_timeout_cut_short_by_the_deadline_does_not_count_against_the_model(fake, sleeps) -> None:
    client = _init(
        fake,
        sleeps,
        models=TWO,
        max_retries=1,
        deadline=5.0,
        timeout=60.0,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=1),
    )
    fake.script(PRIMARY, read_timeout())
    _ask(client)  # the primary's attempt had 5 s, not its 60 s: its timeout is not held against it
    _ask(client)
    assert fake.keys() == [PRIMARY, BACKUP, PRIMARY]
    fake.script(PRIMARY, read_timeout())
    _ask(client, timeout=2.0)  # the caller's own 2 s (below the 5 s left): counts
    _ask(client)
    assert fake.keys()[3:] == [PRIMARY, BACKUP, BACKUP]


@pytest.mark.parametrize("budget", [None, notdiamond.RetryBudget()])
def test_budget_bounds_requests_per_call_in_a_full_outage_storm(fake, budget) -> None:
    sleeps = SleepRecorder()
    client = fake.openai()
    notdiamond.init(
        client,
        models=[PRIMARY],
        max_retries=4,
        backoff=0.001,
        clock=sleeps.clock,
        sleep=sleeps,
        retry_budget=budget,
    )
    fake.always(PRIMARY, status(503), 10_000)
    calls, spacing = (30 if budget is None else 200), 0.1  # 10 calls/s
    for i in range(calls):
        sleeps.now = i * spacing
        with pytest.raises(openai.InternalServerError):
            _ask(client)
    requests = fake.count(PRIMARY)
    if budget is None:
        assert requests == 4 * calls
    else:
        # Per window of 10 s: retries <= 0.2 * first attempts + 1.0 * 10; 20 s span 3 windows.
        floor = budget.min_per_second * budget.window * 3
        assert requests <= calls * (1 + budget.ratio) + floor
        assert requests / calls <= 1.35  # against 4.0 without the budget
        assert requests > calls  # retries still happen within the budget


def test_async_breaker_in_an_outage(fake) -> None:
    import asyncio

    sleeps = AsyncSleepRecorder()
    client = fake.async_openai()
    notdiamond.init(
        [client, fake.async_azure()],
        models=TWO,
        max_retries=1,
        clock=sleeps.clock,
        sleep=sleeps,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=2, break_duration=10.0),
    )
    fake.always(PRIMARY, status(500), 3)

    async def run() -> None:
        for _ in range(4):
            await client.chat.completions.create(model="notdiamond", messages=USER)
        sleeps.now = 100.0
        await client.chat.completions.create(model="notdiamond", messages=USER)  # probe fails
        sleeps.now = 200.0
        await client.chat.completions.create(model="notdiamond", messages=USER)  # probe ok

    asyncio.run(run())
    # Two single-attempt failures open it; two calls skip it; the probe at t=100 fails (falls
    # back at once); the one at t=200 (after the doubled break) succeeds.
    assert fake.keys() == [
        PRIMARY,
        BACKUP,
        PRIMARY,
        BACKUP,
        BACKUP,
        BACKUP,
        PRIMARY,
        BACKUP,
        PRIMARY,
    ]


def test_invalid_options_are_refused_and_nothing_is_patched(fake) -> None:
    client = fake.openai()
    for bad in ({"circuit_breaker": "yes"}, {"retry_budget": 0.2}, {"circuit_breaker": 1}):
        with pytest.raises(TypeError, match=r"notdiamond\.(CircuitBreaker|RetryBudget)\(\.\.\.\)"):
            notdiamond.init(client, models=[PRIMARY], **bad)  # type: ignore[arg-type]
        assert type(client) is openai.OpenAI
    with pytest.raises(ValueError, match="failure_ratio"):
        notdiamond.CircuitBreaker(failure_ratio=0)


def test_weighted_first_choices_renormalise_over_the_models_not_open(fake, sleeps) -> None:
    from scipy.stats import chisquare

    heavy, middle, light = "openai/gpt-4o", "openai/gpt-4o-mini", "azure/gpt-4o"
    client = _init(
        fake,
        sleeps,
        models={heavy: 0.5, middle: 0.3, light: 0.2},
        max_retries=1,
        seed=7,
        circuit_breaker=notdiamond.CircuitBreaker(
            consecutive_failures=1, break_duration=3600.0, max_break_duration=3600.0
        ),
    )
    fake.always(heavy, status(500), 1)
    while fake.count(heavy) == 0:  # until a draw picks it once and it fails: open for an hour
        _ask(client)
    before = len(fake.sent)
    calls = 400
    for _ in range(calls):
        _ask(client)
    firsts = fake.keys()[before:]
    assert len(firsts) == calls  # one request per call: the open model is never tried
    observed = [firsts.count(middle), firsts.count(light)]
    assert sum(observed) == calls
    # 0.3 : 0.2 renormalised = 0.6 : 0.4. At n=400 the chi-square test (1 dof, alpha 0.001)
    # detects the open model's share going to one of them (0.8 : 0.2; noncentrality 67) with
    # power > 0.99. The seed is fixed, so the outcome is deterministic.
    assert chisquare(observed, [0.6 * calls, 0.4 * calls]).pvalue > 0.001


def test_concurrent_admissions_of_a_half_open_breaker_grant_one_probe() -> None:
    import threading

    from notdiamond._health.circuit import Circuit

    circuit = Circuit(
        PRIMARY,
        consecutive_failures=1,
        failure_ratio=1.0,
        minimum_calls=1,
        window=1.0,
        break_duration=1.0,
        max_break_duration=1.0,
    )
    circuit.failure(0.0)
    decisions: list[str] = []
    start = threading.Barrier(16)

    def admit() -> None:
        start.wait()
        for _ in range(200):
            decisions.append(circuit.admit(5.0)[0])

    threads = [threading.Thread(target=admit) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert decisions.count("probe") == 1
    assert decisions.count("skip") == 16 * 200 - 1


def test_concurrent_successes_and_failures_keep_consistent_counts() -> None:
    import threading

    from notdiamond._health.circuit import Circuit

    circuit = Circuit(
        PRIMARY,
        consecutive_failures=10**9,
        failure_ratio=1.0,
        minimum_calls=10**9,
        window=1e9,
        break_duration=1.0,
        max_break_duration=1.0,
    )

    def work(fail: bool) -> None:
        for i in range(2000):
            if fail:
                circuit.failure(float(i))
            else:
                circuit.success(float(i))

    threads = [threading.Thread(target=work, args=(n % 2 == 0,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    health = circuit.health(2000.0)
    assert (health.failures, health.calls) == (8000, 16000)


@pytest.mark.parametrize(
    "off",
    [
        {},
        {"circuit_breaker": None, "retry_budget": None},
        {"circuit_breaker": False, "retry_budget": False},
    ],
)
def test_switched_off_no_strategy_is_in_the_pipeline(fake, off) -> None:
    manager = notdiamond.init(fake.openai(), models=[PRIMARY], **off)
    assert manager.strategies == ()


def test_switched_on_the_breaker_comes_before_the_budget(fake) -> None:
    from notdiamond._strategies.breaker import CircuitBreakerStrategy
    from notdiamond._strategies.budget import RetryBudgetStrategy

    manager = notdiamond.init(
        fake.openai(), models=[PRIMARY], retry_budget=True, circuit_breaker=True
    )
    assert [type(s) for s in manager.strategies] == [CircuitBreakerStrategy, RetryBudgetStrategy]
