"""The whole-call deadline: ``deadline=`` at init and ``notdiamond.deadline(s)`` around calls."""

from __future__ import annotations

import asyncio
import contextlib
import math

import openai
import pytest

import notdiamond
from tests.fakes import USER, FakeProvider, SleepRecorder, read_timeout, status

TWO = ["openai/gpt-4o", "azure/gpt-4o"]


def _read_timeouts(fake: FakeProvider) -> list[float]:
    return [s.timeout["read"] for s in fake.sent if s.timeout is not None]


def _init(fake: FakeProvider, sleeps: SleepRecorder, **options: object) -> openai.OpenAI:
    client = fake.openai()
    notdiamond.init(
        [client, fake.azure()],
        models=TWO,
        clock=sleeps.clock,
        sleep=sleeps,
        **options,  # type: ignore[arg-type]
    )
    return client


def test_each_attempt_timeout_is_cut_to_the_time_left(fake, sleeps) -> None:
    client = _init(fake, sleeps, deadline=10.0, max_retries=3, backoff=2.0, timeout=60.0)
    fake.script("openai/gpt-4o", status(503), status(503))
    client.chat.completions.create(model="notdiamond", messages=USER)
    # attempts at t=0, 2 (after 2 s) and 6 (after 4 s): 10, 8 and 4 s left.
    assert _read_timeouts(fake) == [10.0, 8.0, 4.0]
    assert sleeps.waits == [2.0, 4.0]


def test_a_model_timeout_below_the_time_left_is_kept(fake, sleeps) -> None:
    client = _init(fake, sleeps, deadline=30.0, timeout={"openai/gpt-4o": 5.0})
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert _read_timeouts(fake) == [5.0]


def test_a_wait_that_would_reach_the_deadline_is_not_taken(fake, sleeps) -> None:
    client = _init(fake, sleeps, deadline=5.0, max_retries=3, backoff=2.0)
    fake.script("openai/gpt-4o", status(503), status(503))
    client.chat.completions.create(model="notdiamond", messages=USER)
    # t=0 fails, waits 2 s; t=2 fails, a 4 s wait would end at 6 >= 5: fall back at once.
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o", "azure/gpt-4o"]
    assert sleeps.waits == [2.0]
    assert _read_timeouts(fake) == [5.0, 3.0, 3.0]


def test_time_up_raises_the_last_error_with_the_failures(fake, sleeps) -> None:
    retries = {"openai/gpt-4o": 3, "azure/gpt-4o": 1}
    client = _init(fake, sleeps, deadline=5.0, max_retries=retries, backoff=2.0)
    fake.script("openai/gpt-4o", status(503), status(503))
    fake.script("azure/gpt-4o", status(500))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="notdiamond", messages=USER)
    failures = caught.value.notdiamond_failures  # type: ignore[attr-defined]
    assert [(k, n) for k, n, _ in failures] == [
        ("openai/gpt-4o", 1),
        ("openai/gpt-4o", 2),
        ("azure/gpt-4o", 1),
    ]
    assert failures[-1][2] is caught.value


def test_an_attempt_cut_by_the_deadline_raises_deadline_exceeded(fake, sleeps) -> None:
    client = _init(fake, sleeps, deadline=3.0, max_retries=2, timeout=60.0)
    fake.always("openai/gpt-4o", read_timeout(), n=5)
    fake.always("azure/gpt-4o", read_timeout(), n=5)

    with pytest.raises(openai.APITimeoutError) as caught:
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert isinstance(caught.value, notdiamond.DeadlineExceeded)
    assert isinstance(caught.value.__cause__, openai.APITimeoutError)
    assert "3 s" in str(caught.value)
    assert caught.value.notdiamond_failures  # type: ignore[attr-defined]


def test_no_attempt_sent_once_the_time_is_up(fake) -> None:
    now = [0.0]
    client = fake.openai()
    notdiamond.init(
        [client, fake.azure()],
        models=TWO,
        max_retries=2,
        backoff=1.0,
        deadline=2.0,
        clock=lambda: now[0],
        sleep=lambda s: None,
    )

    def slow_fail(request):  # the provider takes 2.5 s to fail: past the deadline
        now[0] += 2.5
        return status(503)(request)

    fake.script("openai/gpt-4o", slow_fail)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o"]  # no retry, no fallback after the deadline


def test_block_deadline_bounds_each_call_from_its_own_start(fake, sleeps) -> None:
    client = _init(fake, sleeps, timeout=60.0)
    with notdiamond.deadline(4.0):
        client.chat.completions.create(model="notdiamond", messages=USER)
        sleeps.now += 100.0  # a later call in the block gets its own 4 s
        client.chat.completions.create(model="notdiamond", messages=USER)
    client.chat.completions.create(model="notdiamond", messages=USER)  # outside: model timeout
    assert _read_timeouts(fake) == [4.0, 4.0, 60.0]


def test_the_smaller_of_block_and_init_deadline_applies(fake, sleeps) -> None:
    client = _init(fake, sleeps, deadline=7.0, timeout=60.0)
    with notdiamond.deadline(3.0):
        client.chat.completions.create(model="notdiamond", messages=USER)
    with notdiamond.deadline(30.0):
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert _read_timeouts(fake) == [3.0, 7.0]


def test_caller_timeout_is_also_cut(fake, sleeps) -> None:
    client = _init(fake, sleeps, deadline=2.0)
    client.chat.completions.create(model="notdiamond", messages=USER, timeout=30.0)
    client.chat.completions.create(model="notdiamond", messages=USER, timeout=1.0)
    assert _read_timeouts(fake) == [2.0, 1.0]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_block_deadline_follows_asyncio_tasks(fake) -> None:
    client = fake.async_openai()
    notdiamond.init(client, models=["openai/gpt-4o"], timeout=60.0)

    async def call(limit: float | None) -> None:
        if limit is None:
            await client.chat.completions.create(model="notdiamond", messages=USER)
            return
        with notdiamond.deadline(limit):
            await asyncio.sleep(0)  # let the other tasks run inside their own blocks
            await client.chat.completions.create(model="notdiamond", messages=USER)

    await asyncio.gather(call(1.0), call(2.0), call(None))
    assert sorted(_read_timeouts(fake)) == pytest.approx([1.0, 2.0, 60.0], abs=0.05)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, 10**400])
def test_bad_deadlines_are_refused(fake, bad) -> None:
    client = fake.openai()
    with pytest.raises(ValueError, match="deadline"):
        notdiamond.init(client, models=["openai/gpt-4o"], deadline=bad)
    with pytest.raises(ValueError, match="deadline"), notdiamond.deadline(bad):
        pass
    assert type(client) is openai.OpenAI


@pytest.mark.parametrize("bad", ["5", True, [1.0]])
def test_deadlines_that_are_not_numbers_are_refused(fake, bad) -> None:
    with pytest.raises(TypeError, match="deadline"):
        notdiamond.init(fake.openai(), models=["openai/gpt-4o"], deadline=bad)


@pytest.mark.parametrize("block", [False, True], ids=["init", "block"])
def test_a_deadline_below_the_clocks_resolution_still_sends_the_first_attempt(
    fake, sleeps, block: bool
) -> None:
    """At t=1e6 s a float cannot tell t + 1e-12 from t: the deadline is still positive, so the
    call sends its first attempt (cut to the shortest time there is) as a 1e-9 s deadline does,
    instead of finding its time up before it began (found by test_validation_properties)."""
    sleeps.now = 1e6
    assert sleeps.now + 1e-12 == sleeps.now
    client = _init(fake, sleeps, **({} if block else {"deadline": 1e-12}))
    with notdiamond.deadline(1e-12) if block else contextlib.nullcontext():
        reply = client.chat.completions.create(model="notdiamond", messages=USER)
    assert reply.choices[0].message.content == "hi"
    (sent,) = _read_timeouts(fake)
    assert 0 < sent <= 1e-9
