"""Async clients: waits in virtual time (looptime), cancellation, many concurrent tasks."""

from __future__ import annotations

import asyncio
from collections import Counter

import openai
import pytest

import notdiamond
from tests.fakes import USER, AsyncSleepRecorder, FakeProvider, status

pytestmark = [pytest.mark.asyncio, pytest.mark.looptime]
TWO = ["openai/gpt-4o", "azure/gpt-4o"]


async def test_backoff_waits_in_loop_time(fake: FakeProvider) -> None:
    client = fake.async_openai()
    notdiamond.init(client, models=["openai/gpt-4o"], max_retries=4, backoff=3.0)
    fake.always("openai/gpt-4o", status(503), n=3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await client.chat.completions.create(model="notdiamond", messages=USER)
    assert loop.time() - start == pytest.approx(3.0 + 9.0 + 27.0)
    assert fake.count("openai/gpt-4o") == 4


async def test_injected_async_sleep(fake: FakeProvider, async_sleeps: AsyncSleepRecorder) -> None:
    client = fake.async_azure()
    notdiamond.init(client, models=["azure/gpt-4o"], max_retries=3, sleep=async_sleeps)
    fake.script("azure/gpt-4o", status(429, {"retry-after-ms": "2500"}), status(500))
    await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert async_sleeps.waits == [2.5, 4.0]


async def test_cancellation_during_backoff_propagates_at_once(fake: FakeProvider) -> None:
    client = fake.async_openai()
    notdiamond.init([client, fake.async_azure()], models=TWO, max_retries=3, backoff=10.0)
    fake.always("openai/gpt-4o", status(500), n=3)
    task = asyncio.create_task(client.chat.completions.create(model="notdiamond", messages=USER))
    await asyncio.sleep(5.0)  # inside the first 10 s backoff
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(100.0)
    assert fake.keys() == ["openai/gpt-4o"]  # no further attempt, no fallback


async def test_many_concurrent_tasks(fake: FakeProvider) -> None:
    client, azure = fake.async_openai(), fake.async_azure()
    notdiamond.init(
        [client, azure], models={"openai/gpt-4o": 0.7, "azure/gpt-4o": 0.3}, max_retries=2, seed=5
    )
    fake.always("openai/gpt-4o", status(500), n=60)
    results = await asyncio.gather(
        *(client.chat.completions.create(model="notdiamond", messages=USER) for _ in range(300))
    )
    assert all(r.choices[0].message.content == "hi" for r in results)
    sent = Counter(fake.keys())
    # each of the 60 scripted failures costs exactly one extra request (a retry or a fallback)
    failures = min(60, sent["openai/gpt-4o"])
    assert sent["openai/gpt-4o"] + sent["azure/gpt-4o"] == 300 + failures


async def test_all_failed_async_raises_last_error(fake: FakeProvider) -> None:
    client, azure = fake.async_openai(), fake.async_azure()
    notdiamond.init([client, azure], models=TWO)
    fake.script("openai/gpt-4o", status(500))
    fake.script("azure/gpt-4o", status(404))
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="notdiamond", messages=USER)
    assert len(caught.value.notdiamond_failures) == 2  # type: ignore[attr-defined]
