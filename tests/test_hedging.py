"""Hedged requests (``hedge=notdiamond.Hedge(...)``), through the real async SDK in virtual time.

The fake provider below answers each request after a scripted latency (``asyncio.sleep`` on the
looptime loop), records when it started, and whether it completed or was cancelled mid-request.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import defaultdict, deque
from decimal import Decimal
from fractions import Fraction
from typing import Any
from unittest.mock import patch

import anyio
import openai
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import notdiamond
from notdiamond import AttemptEvent, _hedging
from notdiamond._call import CallState
from notdiamond._hedge_options import Hedging, LatencyWindow
from notdiamond._strategy import Admission, Strategy
from tests.fakes import USER, FakeProvider, H, ScriptedBody, sse, status

TWO = ["openai/gpt-4o", "azure/gpt-4o"]
FOUR = ["openai/gpt-4o", "azure/gpt-4o", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]


class SlowProvider(FakeProvider):
    """A fake provider whose answers take scripted (virtual) time; it sees cancellations."""

    def __init__(self) -> None:
        super().__init__()
        self._latencies: dict[str, deque[float]] = defaultdict(deque)
        #: ``(key, start time, read timeout)`` of every request that reached the provider.
        self.started: list[tuple[str, float, float | None]] = []
        self.completed: list[str] = []
        self.cancelled: list[str] = []
        self.timed_out: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def latency(self, key: str, *seconds: float) -> None:
        """Queue latencies for ``key``'s next requests; once used up, answers take no time."""
        self._latencies[key].extend(seconds)

    async def handle_async(self, request: Any) -> Any:
        await request.aread()
        body = json.loads(request.content)
        provider = "azure" if request.url.path.startswith("/openai/") else "openai"
        key = f"{provider}/{body.get('model')}"
        queue = self._latencies.get(key)
        delay = queue.popleft() if queue else 0.0
        timeout = request.extensions.get("timeout") or {}
        self.started.append((key, anyio.current_time(), timeout.get("read")))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        read = timeout.get("read")
        try:
            # asyncio (virtual time under looptime) or trio; the read timeout is honoured.
            await anyio.sleep(delay if read is None else min(delay, read))
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(key)
            raise
        finally:
            self.in_flight -= 1
        if read is not None and read < delay:
            self.timed_out.append(key)
            raise H.ReadTimeout("fake read timeout", request=request)
        self.completed.append(key)
        return self.handle(request)

    def starts(self) -> list[tuple[str, float]]:
        return [(key, at) for key, at, _ in self.started]


@pytest.fixture
def slow() -> SlowProvider:
    return SlowProvider()


def _init(
    slow: SlowProvider,
    events: list[AttemptEvent] | None = None,
    models: Any = TWO,
    **options: Any,
) -> openai.AsyncOpenAI:
    client = slow.async_openai()
    notdiamond.init(
        [client, slow.async_azure()],
        models=models,
        clock=asyncio.get_running_loop().time,
        observer=None if events is None else events.append,
        **options,
    )
    return client


async def _create(client: openai.AsyncOpenAI, **kwargs: Any) -> Any:
    return await client.chat.completions.create(model="notdiamond", messages=USER, **kwargs)


def _others() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


def _decisions(events: list[AttemptEvent]) -> list[tuple[str, int, str]]:
    return [(e.model, e.attempt, e.decision) for e in events]


# -- the hedge fires after exactly ``delay``, the first answer wins, the loser is cancelled --------
@pytest.mark.asyncio
@pytest.mark.looptime
async def test_slow_primary_hedges_after_delay_and_the_first_answer_wins(
    slow: SlowProvider,
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 10.0)
    slow.latency("azure/gpt-4o", 1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await _create(client)
    assert loop.time() - start == pytest.approx(3.0)
    assert result.model == "gpt-4o"
    assert slow.starts() == [("openai/gpt-4o", start), ("azure/gpt-4o", start + 2.0)]
    assert slow.completed == ["azure/gpt-4o"]
    assert slow.cancelled == ["openai/gpt-4o"]  # the loser's request was cancelled mid-flight
    assert _others() == []  # no lane, timer or request task left behind
    # In time order: the answer, then the loser it cancelled.
    assert _decisions(events) == [("azure/gpt-4o", 1, "success"), ("openai/gpt-4o", 1, "hedge")]
    assert [(e.started - start, e.finished - start) for e in events] == [(2.0, 3.0), (0.0, 3.0)]
    assert len({e.call_id for e in events}) == 1
    await asyncio.sleep(60.0)
    assert slow.completed == ["azure/gpt-4o"]  # the primary never completes later either


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_no_hedge_when_the_primary_answers_within_the_delay(slow: SlowProvider) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 1.999)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _create(client)
    assert loop.time() - start == pytest.approx(1.999)
    assert slow.starts() == [("openai/gpt-4o", start)]
    assert _decisions(events) == [("openai/gpt-4o", 1, "success")]
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_primary_still_wins_after_the_hedge_fired(slow: SlowProvider) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 3.0)
    slow.latency("azure/gpt-4o", 5.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await _create(client)
    assert loop.time() - start == pytest.approx(3.0)
    assert result.model == "gpt-4o"
    assert slow.completed == ["openai/gpt-4o"]
    assert slow.cancelled == ["azure/gpt-4o"]
    assert _decisions(events) == [("openai/gpt-4o", 1, "success"), ("azure/gpt-4o", 1, "hedge")]
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_each_further_extra_starts_delay_after_the_previous_and_max_extra_holds(
    slow: SlowProvider,
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, models=FOUR, hedge=notdiamond.Hedge(delay=1.5, max_extra=2))
    for key, seconds in zip(FOUR, (100.0, 100.0, 2.0, 100.0), strict=True):
        slow.latency(key, seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await _create(client)
    # 0: primary; 1.5: first extra; 3.0: second extra; then 3 in flight: no fourth model.
    assert [(k, at - start) for k, at in slow.starts()] == [
        ("openai/gpt-4o", 0.0),
        ("azure/gpt-4o", 1.5),
        ("openai/gpt-4o-mini", 3.0),
    ]
    assert loop.time() - start == pytest.approx(5.0)
    assert result.model == "gpt-4o-mini"
    assert slow.most_in_flight == 3
    assert sorted(slow.cancelled) == ["azure/gpt-4o", "openai/gpt-4o"]
    assert [e.decision for e in events] == ["success", "hedge", "hedge"]
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_one_extra_at_most_with_max_extra_1(slow: SlowProvider) -> None:
    client = _init(slow, models=FOUR, hedge=notdiamond.Hedge(delay=1.0, max_extra=1))
    slow.latency("openai/gpt-4o", 10.0)
    slow.latency("azure/gpt-4o", 10.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _create(client)
    assert [(k, at - start) for k, at in slow.starts()] == [
        ("openai/gpt-4o", 0.0),
        ("azure/gpt-4o", 1.0),
    ]
    assert slow.most_in_flight == 2
    assert loop.time() - start == pytest.approx(10.0)
    assert slow.completed == ["openai/gpt-4o"]
    assert slow.cancelled == ["azure/gpt-4o"]


# -- failures inside a hedged call ------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_failing_hedge_does_not_end_the_call_while_the_primary_runs(
    slow: SlowProvider,
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 10.0)
    slow.latency("azure/gpt-4o", 0.5)
    slow.script("azure/gpt-4o", status(400))
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await _create(client)
    assert loop.time() - start == pytest.approx(10.0)
    assert result.model == "gpt-4o"
    assert slow.completed == ["azure/gpt-4o", "openai/gpt-4o"]
    assert _decisions(events) == [("azure/gpt-4o", 1, "hedge"), ("openai/gpt-4o", 1, "success")]
    assert isinstance(events[0].error, openai.BadRequestError)
    assert events[0].status_code == 400


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_failed_attempt_frees_its_slot_for_the_next_fallback_model(
    slow: SlowProvider,
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, models=FOUR[:3], hedge=notdiamond.Hedge(delay=2.0, max_extra=1))
    slow.latency("openai/gpt-4o", 10.0)
    slow.latency("azure/gpt-4o", 0.5)
    slow.script("azure/gpt-4o", status(404))
    slow.latency("openai/gpt-4o-mini", 1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await _create(client)
    assert [(k, at - start) for k, at in slow.starts()] == [
        ("openai/gpt-4o", 0.0),
        ("azure/gpt-4o", 2.0),
        ("openai/gpt-4o-mini", 2.5),  # at once, in the failed hedge's slot
    ]
    assert result.model == "gpt-4o-mini"
    assert loop.time() - start == pytest.approx(3.5)
    assert slow.most_in_flight == 2
    assert _decisions(events) == [
        ("azure/gpt-4o", 1, "fallback"),
        ("openai/gpt-4o-mini", 1, "success"),
        ("openai/gpt-4o", 1, "hedge"),
    ]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_same_model_retries_still_apply_inside_a_hedged_call(slow: SlowProvider) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0), max_retries=2, backoff=2.0)
    slow.latency("openai/gpt-4o", 3.0, 1.0)
    slow.script("openai/gpt-4o", status(500))
    slow.latency("azure/gpt-4o", 10.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await _create(client)
    # primary fails at 3, retries after backoff ** 1 = 2 s at 5, answers at 6; the hedge (2..12)
    # is cancelled. The retry's own hedge timer (5 + 2 = 7) never fires.
    assert [(k, at - start) for k, at in slow.starts()] == [
        ("openai/gpt-4o", 0.0),
        ("azure/gpt-4o", 2.0),
        ("openai/gpt-4o", 5.0),
    ]
    assert result.model == "gpt-4o"
    assert loop.time() - start == pytest.approx(6.0)
    assert slow.cancelled == ["azure/gpt-4o"]
    assert _decisions(events) == [
        ("openai/gpt-4o", 1, "retry"),
        ("openai/gpt-4o", 2, "success"),
        ("azure/gpt-4o", 1, "hedge"),
    ]
    assert events[0].next_wait == 2.0
    assert events[1].wait_before == 2.0


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_call_raises_only_when_no_attempt_is_left(slow: SlowProvider) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 3.0)
    slow.script("openai/gpt-4o", status(500))
    slow.latency("azure/gpt-4o", 2.0)
    slow.script("azure/gpt-4o", status(404))
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(openai.NotFoundError) as caught:
        await _create(client)
    assert loop.time() - start == pytest.approx(4.0)
    failures = caught.value.notdiamond_failures  # type: ignore[attr-defined]
    assert [(k, n, type(e).__name__) for k, n, e in failures] == [
        ("openai/gpt-4o", 1, "InternalServerError"),
        ("azure/gpt-4o", 1, "NotFoundError"),
    ]
    assert _decisions(events) == [("openai/gpt-4o", 1, "hedge"), ("azure/gpt-4o", 1, "raise")]
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_cancelling_the_call_cancels_every_attempt_and_reports_none(
    slow: SlowProvider,
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 10.0)
    slow.latency("azure/gpt-4o", 10.0)
    task = asyncio.create_task(_create(client))
    await asyncio.sleep(3.0)
    assert slow.in_flight == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(slow.cancelled) == ["azure/gpt-4o", "openai/gpt-4o"]
    assert events == []  # the caller cancelled: no attempt lost to another one
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_deadline_cuts_the_hedge_timeout_too(slow: SlowProvider) -> None:
    client = _init(slow, hedge=notdiamond.Hedge(delay=2.0), deadline=5.0, timeout=60.0)
    slow.latency("openai/gpt-4o", 4.0)
    slow.latency("azure/gpt-4o", 4.0)
    await _create(client)
    assert [t for _, _, t in slow.started] == [5.0, 3.0]


# -- percentile delays ----------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_percentile_delay_adapts_once_enough_successes_were_seen(
    slow: SlowProvider,
) -> None:
    hedge = notdiamond.Hedge(delay="p50", initial_delay=5.0, min_samples=3, window=10)
    client = _init(slow, hedge=hedge)
    loop = asyncio.get_running_loop()
    # Three successes of the primary (1, 1.5 and 2 s): none reaches the initial delay of 5 s.
    for latency in (1.0, 2.0, 1.5):
        slow.latency("openai/gpt-4o", latency)
        await _create(client)
    assert [k for k, _ in slow.starts()] == ["openai/gpt-4o"] * 3
    # Now p50 of the primary's latencies is 1.5 s: a slow primary is hedged after 1.5 s.
    slow.latency("openai/gpt-4o", 30.0)
    slow.latency("azure/gpt-4o", 0.25)
    start = loop.time()
    await _create(client)
    assert [(k, at - start) for k, at in slow.starts()[3:]] == [
        ("openai/gpt-4o", 0.0),
        ("azure/gpt-4o", 1.5),
    ]
    assert loop.time() - start == pytest.approx(1.75)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_before_enough_successes_the_initial_delay_applies(slow: SlowProvider) -> None:
    hedge = notdiamond.Hedge(delay="p95", initial_delay=4.0, min_samples=5)
    client = _init(slow, hedge=hedge)
    slow.latency("openai/gpt-4o", 1.0, 30.0)
    await _create(client)
    slow.latency("azure/gpt-4o", 1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _create(client)
    assert [(k, at - start) for k, at in slow.starts()[1:]] == [
        ("openai/gpt-4o", 0.0),
        ("azure/gpt-4o", 4.0),
    ]


def test_percentile_delays_use_the_models_own_window_with_a_floor() -> None:
    hedge = notdiamond.Hedge(delay="p90", initial_delay=3.0, min_delay=0.2, min_samples=2, window=5)
    hedging = Hedging(hedge, TWO)
    assert hedging.delay_for("openai/gpt-4o") == 3.0
    hedging.record("openai/gpt-4o", 0.01)
    assert hedging.delay_for("openai/gpt-4o") == 3.0  # one sample: not enough yet
    hedging.record("openai/gpt-4o", 0.05)
    assert hedging.delay_for("openai/gpt-4o") == 0.2  # the floor
    for seconds in (1.0, 2.0, 3.0, 4.0, 5.0):  # the window keeps the last 5
        hedging.record("openai/gpt-4o", seconds)
    assert hedging.delay_for("openai/gpt-4o") == 5.0
    assert hedging.delay_for("azure/gpt-4o") == 3.0  # another model's window is its own


@given(
    samples=st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=1, max_size=60),
    quantile=st.floats(0.01, 100.0),
    window=st.integers(1, 80),
)
def test_the_window_percentile_is_the_nearest_rank_of_the_recent_samples(
    samples: list[float], quantile: float, window: int
) -> None:
    latencies = LatencyWindow(window)
    for seconds in samples:
        latencies.add(seconds)
    recent = sorted(samples[-window:])
    assert len(latencies) == len(recent)
    value = latencies.percentile(quantile)
    assert value == recent[max(1, math.ceil(quantile / 100 * len(recent))) - 1]
    assert recent[0] <= value <= recent[-1]
    assert latencies.percentile(100.0) == recent[-1]


# -- every hedged attempt is an attempt: events, logs, exact HTTP counts --------------------------
@pytest.mark.asyncio
@pytest.mark.looptime
async def test_every_request_is_one_reported_attempt_over_many_concurrent_calls(
    slow: SlowProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=1.0))
    rng = random.Random(7)
    for key in TWO:
        slow.latency(key, *(rng.expovariate(1.0) for _ in range(400)))
    results = await asyncio.gather(*(_create(client) for _ in range(150)))
    assert len(results) == 150
    assert len(events) == len(slow.started)  # every HTTP request reached the observer once
    per_call: dict[int, list[AttemptEvent]] = defaultdict(list)
    for event in events:
        per_call[event.call_id].append(event)
    assert len(per_call) == 150
    for attempts in per_call.values():
        assert attempts[0].decision == "success"  # then the attempt it cancelled, if any
        assert all(e.decision == "hedge" for e in attempts[1:])
        assert len(attempts) <= 2
    hedged = sum(len(a) == 2 for a in per_call.values())
    assert hedged == sum(1 for e in events if e.decision == "hedge") > 0
    assert len(slow.completed) + len(slow.cancelled) == len(slow.started)
    assert _others() == []
    text = nd_logs.text
    assert "hedging with azure/gpt-4o" in text
    assert "Hello!" not in text
    assert "sk-test-secret-key" not in text


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_hedged_stream_is_the_winners_stream_whole(slow: SlowProvider) -> None:
    client = _init(slow, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 10.0)
    stream = await _create(client, stream=True)
    chunks = [chunk async for chunk in stream]
    assert [c.model for c in chunks] == ["gpt-4o", "gpt-4o"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "hi"
    assert slow.cancelled == ["openai/gpt-4o"]
    assert slow.completed == ["azure/gpt-4o"]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_without_hedge_a_slow_primary_is_waited_for(slow: SlowProvider) -> None:
    client = _init(slow)
    slow.latency("openai/gpt-4o", 10.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await _create(client)
    assert loop.time() - start == pytest.approx(10.0)
    assert slow.starts() == [("openai/gpt-4o", start)]


# -- refusals at init -----------------------------------------------------------------------------
def test_sync_clients_are_refused_and_nothing_is_patched(fake: FakeProvider) -> None:
    client = fake.openai()
    with pytest.raises(ValueError, match="async client"):
        notdiamond.init([client, fake.azure()], models=TWO, hedge=notdiamond.Hedge())
    assert type(client) is openai.OpenAI


@pytest.mark.parametrize(
    ("models", "match"),
    [
        (["openai/gpt-4o"], "Configure a fallback model"),
        ({"openai/gpt-4o": 1.0, "azure/gpt-4o": 0.0}, "Configure a fallback model"),
    ],
)
def test_hedging_needs_a_second_usable_model(fake: FakeProvider, models: Any, match: str) -> None:
    client = fake.async_openai()
    with pytest.raises(ValueError, match=match):
        notdiamond.init([client, fake.async_azure()], models=models, hedge=notdiamond.Hedge())
    assert type(client) is openai.AsyncOpenAI


@pytest.mark.parametrize("value", [2.0, "p95", {"delay": 2.0}, 1, "True"])
def test_hedge_must_be_a_hedge_object(fake: FakeProvider, value: object) -> None:
    with pytest.raises(TypeError, match=r"notdiamond\.Hedge\("):
        notdiamond.init(fake.async_openai(), models=TWO[:1], hedge=value)  # type: ignore[arg-type]


def _valid_delay(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value) and 0 <= value <= 1e9
    if isinstance(value, str):
        number = value[1:]
        if not value.startswith("p") or not number or number.count(".") > 1:
            return False
        if not all(c in "0123456789." for c in number) or "." in (number[0], number[-1]):
            return False
        return 0 < float(number) <= 100
    return False


delays = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 10**6),
    st.booleans(),
    st.none(),
    st.builds(lambda q: f"p{q}", st.floats(-10, 200, allow_nan=False)),
    st.builds(lambda q: f"p{q}", st.integers(-5, 200)),
    st.text(max_size=6),
)


@given(delay=delays)
def test_any_delay_is_accepted_exactly_when_valid(delay: object) -> None:
    if _valid_delay(delay):
        hedge = notdiamond.Hedge(delay=delay)  # type: ignore[arg-type]
        if isinstance(delay, str):
            assert hedge.quantile == float(delay[1:])
        else:
            assert hedge.delay == float(delay)
            assert hedge.quantile is None
    else:
        with pytest.raises((TypeError, ValueError), match=r"Hedge\(delay=") as caught:
            notdiamond.Hedge(delay=delay)  # type: ignore[arg-type]
        assert "e.g." in str(caught.value) or "such as" in str(caught.value)


counts = st.one_of(st.integers(-3, 1000), st.floats(allow_nan=True), st.booleans(), st.none())
seconds = st.one_of(st.floats(allow_nan=True), st.integers(-3, 100), st.booleans(), st.none())


@given(
    max_extra=counts,
    initial_delay=seconds,
    min_delay=seconds,
    min_samples=counts,
    window=counts,
)
def test_every_other_option_is_validated_naming_the_fix(
    max_extra: Any, initial_delay: Any, min_delay: Any, min_samples: Any, window: Any
) -> None:
    def whole(value: Any, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    def secs(value: Any) -> bool:
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and 0 <= value <= 1e9
        )

    valid = (
        whole(max_extra, 1)
        and secs(initial_delay)
        and secs(min_delay)
        and initial_delay >= min_delay
        and whole(min_samples, 1)
        and whole(window, 1)
        and window >= min_samples
    )
    options = {
        "max_extra": max_extra,
        "initial_delay": initial_delay,
        "min_delay": min_delay,
        "min_samples": min_samples,
        "window": window,
    }
    if valid:
        hedge = notdiamond.Hedge(delay="p95", **options)
        assert hedge.max_extra == max_extra
        assert hedge.window == window
        assert hedge.initial_delay == float(initial_delay)
    else:
        with pytest.raises((TypeError, ValueError), match=r"^Hedge\(") as caught:
            notdiamond.Hedge(delay="p95", **options)
        message = str(caught.value)
        assert any(fix in message for fix in ("e.g.", "E.g.", "Raise", "lower"))


def test_max_extra_0_points_to_hedge_none() -> None:
    with pytest.raises(ValueError, match="hedge=None"):
        notdiamond.Hedge(max_extra=0)


def test_hedge_is_exported_and_documented() -> None:
    assert "Hedge" in notdiamond.__all__
    assert notdiamond.Hedge().delay == 2.0
    assert notdiamond.Hedge().max_extra == 1
    assert "hedge" in notdiamond.InitOptions.__annotations__


# -- answers at the same instant; strategies see every lane -----------------------------------
@pytest.mark.asyncio
@pytest.mark.looptime
@pytest.mark.parametrize("stream", [False, True])
async def test_two_answers_at_once_one_wins_and_the_other_is_closed(
    slow: SlowProvider, stream: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 3.0)
    slow.latency("azure/gpt-4o", 1.0)  # started at 2: both answer at 3
    late: list[Any] = []
    real_discard = _hedging._discard

    async def spy(result: Any) -> None:
        late.append(result)
        await real_discard(result)

    monkeypatch.setattr(_hedging, "_discard", spy)
    await _create(client, stream=stream)
    assert sorted(slow.completed) == ["azure/gpt-4o", "openai/gpt-4o"]
    assert slow.cancelled == []
    assert [e.decision for e in events] == ["success", "hedge"]
    assert events[0].model != events[1].model
    assert len(late) == 1
    if stream:
        assert late[0].response.is_closed  # the loser's connection is closed, never read
    assert _others() == []


class Recording(Strategy):
    name = "recording"

    def __init__(self, skip: str) -> None:
        self.skip = skip
        self.log: list[tuple[object, ...]] = []

    def admit(self, call: CallState, key: str, now: float) -> Admission:
        self.log.append(("admit", key))
        return "skip" if key == self.skip else "admit"

    def attempt_started(self, call: CallState, key: str, attempt: int, now: float) -> None:
        self.log.append(("started", key, call.sent, now))

    def attempt_succeeded(self, call: CallState, key: str, now: float) -> None:
        self.log.append(("succeeded", key, now))

    def attempt_abandoned(self, call: CallState, key: str) -> None:
        self.log.append(("abandoned", key))


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_strategies_admit_each_hedge_and_release_the_cancelled_loser(
    slow: SlowProvider,
) -> None:
    three = ["openai/gpt-4o", "azure/gpt-4o", "openai/gpt-4o-mini"]
    client = slow.async_openai()
    loop = asyncio.get_running_loop()
    manager = notdiamond.init(
        [client, slow.async_azure()],
        models=three,
        clock=loop.time,
        hedge=notdiamond.Hedge(delay=2.0),
    )
    strategy = Recording(skip="azure/gpt-4o")
    pipeline = manager.pipeline
    wrappers = dict(manager.pipeline.wrapper_of)
    pipeline.__init__(  # type: ignore[misc]
        settings=manager.settings,
        next_model=manager.get_next_model,
        policies=manager.policies,
        strategies=(strategy,),
        clock=loop.time,
        sleep=pipeline.sleep,
        observer=None,
        deadline=None,
        hedge=pipeline.hedge,
    )
    pipeline.wrapper_of.update(wrappers)
    slow.latency("openai/gpt-4o", 10.0)
    slow.latency("openai/gpt-4o-mini", 1.0)
    start = loop.time()
    result = await _create(client)
    assert result.model == "gpt-4o-mini"
    assert strategy.log == [
        ("admit", "openai/gpt-4o"),
        ("started", "openai/gpt-4o", 0, start),
        ("admit", "azure/gpt-4o"),  # skipped: the hedge goes to the next admitted model
        ("admit", "openai/gpt-4o-mini"),
        ("started", "openai/gpt-4o-mini", 1, start + 2.0),
        ("succeeded", "openai/gpt-4o-mini", start + 3.0),
        ("abandoned", "openai/gpt-4o"),
    ]
    assert [k for k, _ in slow.starts()] == ["openai/gpt-4o", "openai/gpt-4o-mini"]


def test_any_real_number_type_is_read_as_seconds() -> None:
    hedge = notdiamond.Hedge(delay=Fraction(3, 2), initial_delay=Decimal("2.5"), min_delay=0)
    assert hedge.delay == 1.5
    assert hedge.initial_delay == 2.5
    assert isinstance(hedge.min_delay, float)


def test_hedging_runs_on_trio_too(slow: SlowProvider) -> None:
    """The driver is anyio code: under trio (real time, short latencies) it behaves the same."""
    events: list[AttemptEvent] = []

    async def main() -> float:
        client = slow.async_openai()
        notdiamond.init(
            [client, slow.async_azure()],
            models=TWO,
            clock=trio.current_time,
            observer=events.append,
            hedge=notdiamond.Hedge(delay=0.1),
        )
        slow.latency("openai/gpt-4o", 5.0)
        slow.latency("azure/gpt-4o", 0.05)
        start = trio.current_time()
        result = await _create(client)
        assert result.model == "gpt-4o"
        return trio.current_time() - start

    took = trio.run(main)
    assert 0.15 <= took < 2.0
    assert [k for k, _ in slow.starts()] == ["openai/gpt-4o", "azure/gpt-4o"]
    assert slow.starts()[1][1] - slow.starts()[0][1] == pytest.approx(0.1, abs=0.05)
    assert slow.cancelled == ["openai/gpt-4o"]
    assert [e.decision for e in events] == ["success", "hedge"]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_hedged_raw_response_is_the_winners(slow: SlowProvider) -> None:
    client = _init(slow, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 10.0)
    raw = await client.chat.completions.with_raw_response.create(model="notdiamond", messages=USER)
    assert raw.http_request.url.path.startswith("/openai/")  # Azure's deployment path
    assert raw.parse().model == "gpt-4o"
    assert slow.cancelled == ["openai/gpt-4o"]
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_hedging_with_a_circuit_breaker_and_a_retry_budget(slow: SlowProvider) -> None:
    events: list[AttemptEvent] = []
    client = _init(
        slow,
        events,
        hedge=notdiamond.Hedge(delay=1.0),
        circuit_breaker=True,
        retry_budget=True,
        max_retries=2,
    )
    for _ in range(5):
        slow.latency("openai/gpt-4o", 5.0)
        await _create(client)
    assert [e.decision for e in events] == ["success", "hedge"] * 5
    assert slow.cancelled == ["openai/gpt-4o"] * 5
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_stream_whose_first_chunk_is_slow_is_hedged(slow: SlowProvider) -> None:
    """For a stream, "no response" means no first chunk: headers alone do not stop the hedge."""
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    bodies: list[ScriptedBody] = []
    slow.script("openai/gpt-4o", sse(("x", "y"), stall=30.0, bodies=bodies))  # headers at once
    slow.script("azure/gpt-4o", sse(("a", "b"), stall=1.0, bodies=bodies))
    loop = asyncio.get_running_loop()
    start = loop.time()
    stream = await _create(client, stream=True)
    assert loop.time() - start == pytest.approx(3.0)
    assert "".join([c.choices[0].delta.content or "" async for c in stream]) == "ab"
    assert bodies[0].closed  # the primary's stalled body was closed when it lost
    assert bodies[0].delivered == 0
    assert _decisions(events) == [("azure/gpt-4o", 1, "success"), ("openai/gpt-4o", 1, "hedge")]
    assert _others() == []


def test_true_is_the_default_hedge_and_false_is_off(fake: FakeProvider) -> None:
    on = notdiamond.init([fake.async_openai(), fake.async_azure()], models=TWO, hedge=True)
    assert on.pipeline.hedge is not None
    assert on.pipeline.hedge.options == notdiamond.Hedge()
    off = notdiamond.init([fake.async_openai(), fake.async_azure()], models=TWO, hedge=False)
    assert off.pipeline.hedge is None
    sync = notdiamond.init([fake.openai(), fake.azure()], models=TWO, hedge=False)
    assert sync.pipeline.hedge is None  # off is fine for sync clients


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_every_hedged_attempt_passes_through_default_create(slow: SlowProvider) -> None:
    client, azure = slow.async_openai(), slow.async_azure()
    manager = notdiamond.init([client, azure], models=TWO, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 10.0)
    with (
        patch.object(
            openai_wrapper := manager.get_wrapper("openai/gpt-4o"),
            "_default_create",
            wraps=openai_wrapper._default_create,
        ) as primary,
        patch.object(
            azure_wrapper := manager.get_wrapper("azure/gpt-4o"),
            "_default_create",
            wraps=azure_wrapper._default_create,
        ) as hedge,
    ):
        await _create(client)
    primary.assert_called_once_with(model="gpt-4o", messages=USER, timeout=60.0)
    hedge.assert_called_once_with(model="gpt-4o", messages=USER, timeout=60.0)
    assert slow.cancelled == ["openai/gpt-4o"]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_slow_quarter_of_answers_costs_the_p99_only_the_delay(slow: SlowProvider) -> None:
    """The issue's slow scenario: a quarter of the primary's answers take 30 s. Hedged after 2 s,
    the p99 is under half the unhedged one, and exactly the slow answers cost an extra request."""
    rng = random.Random(20251125)
    n = 400
    primary = [30.0 if rng.random() < 0.25 else rng.uniform(0.3, 1.9) for _ in range(n)]
    fallback = [rng.uniform(0.3, 1.5) for _ in range(n)]
    loop = asyncio.get_running_loop()

    async def timed(client: openai.AsyncOpenAI) -> float:
        start = loop.time()
        await _create(client)
        return loop.time() - start

    def p99(latencies: list[float]) -> float:
        return sorted(latencies)[math.ceil(0.99 * len(latencies)) - 1]

    plain_client = _init(slow)
    slow.latency("openai/gpt-4o", *primary)
    plain = await asyncio.gather(*(timed(plain_client) for _ in range(n)))
    notdiamond.init(
        [plain_client, slow.async_azure()], models=TWO, hedge=notdiamond.Hedge(delay=2.0)
    )
    slow.started.clear()
    slow.latency("openai/gpt-4o", *primary)
    slow.latency("azure/gpt-4o", *fallback)
    hedged = await asyncio.gather(*(timed(plain_client) for _ in range(n)))
    assert p99(plain) == 30.0
    assert p99(hedged) <= 2.0 + 1.5 < p99(plain) / 2
    extra = sum(1 for key, _, _ in slow.started if key == "azure/gpt-4o")
    assert extra == sum(1 for latency in primary if latency > 2.0) > 0.2 * n
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_deadline_ends_a_hedged_call_once_every_lane_ran_out_of_time(
    slow: SlowProvider,
) -> None:
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0), deadline=5.0, max_retries=3)
    slow.latency("openai/gpt-4o", 10.0)
    slow.latency("azure/gpt-4o", 10.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(notdiamond.DeadlineExceeded):
        await _create(client)
    assert loop.time() - start == pytest.approx(5.0)
    assert sorted(slow.timed_out) == ["azure/gpt-4o", "openai/gpt-4o"]
    assert [t for _, _, t in slow.started] == [5.0, 3.0]  # both cut to the deadline
    assert sorted(e.decision for e in events) == ["hedge", "raise"]
    assert events[-1].decision == "raise"
    assert _others() == []


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_zero_delay_races_the_models_from_the_start(slow: SlowProvider) -> None:
    client = _init(slow, models=FOUR[:3], hedge=notdiamond.Hedge(delay=0, max_extra=2))
    for key, seconds in zip(FOUR[:3], (3.0, 2.0, 1.0), strict=True):
        slow.latency(key, seconds)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await _create(client)
    assert loop.time() - start == pytest.approx(1.0)
    assert result.model == "gpt-4o-mini"
    assert [at - start for _, at in slow.starts()] == [0.0, 0.0, 0.0]
    assert sorted(slow.cancelled) == ["azure/gpt-4o", "openai/gpt-4o"]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_hedged_call_is_traced_one_span_per_attempt_each_ended(
    slow: SlowProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each lane reports from its own task, so every attempt span (opened in that task's
    context) is ended there: the winner's as a success, the cancelled loser's as abandoned."""
    otel_trace = pytest.importorskip("opentelemetry.trace")
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    monkeypatch.setattr(otel_trace, "get_tracer_provider", lambda: provider)
    events: list[AttemptEvent] = []
    client = _init(slow, events, hedge=notdiamond.Hedge(delay=2.0))
    slow.latency("openai/gpt-4o", 10.0)
    await _create(client)
    finished = exporter.get_finished_spans()
    attempts = {
        s.attributes["notdiamond.model_key"]: s.attributes["notdiamond.decision"]
        for s in finished
        if s.attributes and "notdiamond.attempt" in s.attributes
    }
    calls = [s for s in finished if s.attributes and "notdiamond.attempt" not in s.attributes]
    assert attempts == {"azure/gpt-4o": "success", "openai/gpt-4o": "abandoned"}
    assert len(calls) == 1
    assert all(
        s.parent is not None and s.parent.span_id == calls[0].context.span_id
        for s in finished
        if s is not calls[0]
    )
    assert [e.decision for e in events] == ["success", "hedge"]
    provider.shutdown()
