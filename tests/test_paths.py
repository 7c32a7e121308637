"""SPEC 4.8 / 4.9: every call path goes through the same policy, sync and async."""

from __future__ import annotations

from typing import Any

import openai
import pydantic
import pytest

import notdiamond
from tests.fakes import USER, FakeProvider, SleepRecorder, status

TWO = ["openai/gpt-4o", "azure/gpt-4o"]


class Answer(pydantic.BaseModel):
    answer: str


def _create(c: Any) -> Any:
    return c.chat.completions.create(model="notdiamond", messages=USER)


def _create_stream(c: Any) -> Any:
    return "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    )


def _parse(c: Any) -> Any:
    return (
        c.chat.completions.parse(model="notdiamond", messages=USER, response_format=Answer)
        .choices[0]
        .message.parsed
    )


def _stream_helper(c: Any) -> Any:
    with c.chat.completions.stream(model="notdiamond", messages=USER) as stream:
        return stream.get_final_completion().choices[0].message.content


def _raw(c: Any) -> Any:
    raw = c.chat.completions.with_raw_response.create(model="notdiamond", messages=USER)
    return raw.parse().choices[0].message.content


def _raw_parse(c: Any) -> Any:
    return c.chat.completions.with_raw_response.parse(
        model="notdiamond", messages=USER, response_format=Answer
    ).parse()


def _streaming_response(c: Any) -> Any:
    with c.chat.completions.with_streaming_response.create(
        model="notdiamond", messages=USER
    ) as response:
        return response.parse().choices[0].message.content


def _with_options(c: Any) -> Any:
    return c.with_options(timeout=30.0, max_retries=5).chat.completions.create(
        model="notdiamond", messages=USER
    )


SYNC_PATHS = [
    _create,
    _create_stream,
    _parse,
    _stream_helper,
    _raw,
    _raw_parse,
    _streaming_response,
    _with_options,
]


@pytest.mark.parametrize("path", SYNC_PATHS, ids=lambda f: f.__name__.strip("_"))
def test_sync_path_retries_and_falls_back(
    fake: FakeProvider, sleeps: SleepRecorder, path: Any
) -> None:
    openai_client = fake.openai()
    azure_client = fake.azure()
    notdiamond.init([openai_client, azure_client], models=TWO, max_retries=2, sleep=sleeps)
    fake.script("openai/gpt-4o", status(500), status(429))

    result = path(openai_client)

    assert result is not None
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o", "azure/gpt-4o"]
    assert sleeps.waits == [2.0]


async def _acreate(c: Any) -> Any:
    return await c.chat.completions.create(model="notdiamond", messages=USER)


async def _acreate_stream(c: Any) -> Any:
    stream = await c.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    return "".join([ch.choices[0].delta.content or "" async for ch in stream])


async def _aparse(c: Any) -> Any:
    result = await c.chat.completions.parse(
        model="notdiamond", messages=USER, response_format=Answer
    )
    return result.choices[0].message.parsed


async def _astream_helper(c: Any) -> Any:
    async with c.chat.completions.stream(model="notdiamond", messages=USER) as stream:
        return (await stream.get_final_completion()).choices[0].message.content


async def _araw(c: Any) -> Any:
    raw = await c.chat.completions.with_raw_response.create(model="notdiamond", messages=USER)
    return raw.parse().choices[0].message.content


async def _astreaming_response(c: Any) -> Any:
    async with c.chat.completions.with_streaming_response.create(
        model="notdiamond", messages=USER
    ) as response:
        return (await response.parse()).choices[0].message.content


async def _awith_options(c: Any) -> Any:
    return await c.with_options(timeout=30.0).chat.completions.create(
        model="notdiamond", messages=USER
    )


ASYNC_PATHS = [
    _acreate,
    _acreate_stream,
    _aparse,
    _astream_helper,
    _araw,
    _astreaming_response,
    _awith_options,
]


@pytest.mark.asyncio
@pytest.mark.looptime
@pytest.mark.parametrize("path", ASYNC_PATHS, ids=lambda f: f.__name__.strip("_"))
async def test_async_path_retries_and_falls_back(fake: FakeProvider, path: Any) -> None:
    import asyncio

    openai_client = fake.async_openai()
    azure_client = fake.async_azure()
    notdiamond.init([openai_client, azure_client], models=TWO, max_retries=2)  # default sleep
    fake.script("openai/gpt-4o", status(500), status(429))
    loop = asyncio.get_running_loop()
    start = loop.time()

    result = await path(openai_client)

    assert result is not None
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o", "azure/gpt-4o"]
    assert loop.time() - start == pytest.approx(2.0)  # one backoff wait, in virtual time


def test_parse_returns_parsed_object(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    client = fake.openai()
    notdiamond.init(client, models=["openai/gpt-4o"], sleep=sleeps)
    assert _parse(client) == Answer(answer="hi")
    assert fake.sent[0].body["response_format"]["type"] == "json_schema"


def test_raw_response_keeps_its_type(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    client = fake.openai()
    notdiamond.init(client, models=["openai/gpt-4o"], sleep=sleeps)
    raw = client.chat.completions.with_raw_response.create(model="notdiamond", messages=USER)
    assert type(raw).__name__ == "LegacyAPIResponse"
    assert raw.http_request.headers["x-stainless-raw-response"] == "true"


def test_copies_of_copies_are_managed_and_restored(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client = fake.openai()
    manager = notdiamond.init(client, models=["openai/gpt-4o"], max_retries=2, sleep=sleeps)
    copy = client.with_options(timeout=5.0).copy(max_retries=4)
    fake.script("openai/gpt-4o", status(500))
    copy.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.count("openai/gpt-4o") == 2
    manager.close()
    assert type(copy) is openai.OpenAI
    assert "_notdiamond_slot" not in copy.__dict__


def test_stream_failing_before_it_starts_falls_back(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    notdiamond.init([openai_client, azure_client], models=TWO, sleep=sleeps)
    fake.script("openai/gpt-4o", status(503))
    stream = openai_client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "hi"
    assert fake.keys() == ["openai/gpt-4o", "azure/gpt-4o"]
