"""The original SDK's seams (issue 7 §1): wrappers built by hand, ``RetryManager(models, [...])``,
the exact ``_default_create`` call per attempt, and a ``create`` replaced before the wrapper."""

from __future__ import annotations

import logging
from typing import Any
from unittest.mock import AsyncMock, call, patch

import openai
import pytest

import notdiamond
from notdiamond.toolkit.retry import AsyncRetryWrapper, RetryManager, RetryWrapper
from tests.fakes import FakeProvider, SleepRecorder, status

MODELS = ["openai/gpt-4o-mini", "openai/gpt-4o"]
HELLO = [{"role": "user", "content": "Hello, how are you?"}]
SYSTEM = [{"role": "system", "content": "Be brief."}]


class Broken(Exception):
    """Not an SDK error: what a broken replacement raises."""


def _sent_models(fake: FakeProvider) -> list[str]:
    return fake.keys()


# -- building wrappers and managers the original's way ------------------------------------------


def test_a_wrapper_and_a_manager_patch_the_client_as_init_would(fake: FakeProvider) -> None:
    client = fake.openai()
    wrapper = RetryWrapper(
        client=client,
        models=MODELS,
        max_retries=1,
        timeout={"openai/gpt-4o-mini": 10.0, "openai/gpt-4o": 5.0},
        model_messages={"gpt-4o-mini": SYSTEM},  # a bare name means this provider's model
        api_key="nd-key",
    )
    assert type(client) is openai.OpenAI  # a wrapper alone patches nothing
    manager = RetryManager(MODELS, [wrapper])
    assert type(client) is not openai.OpenAI
    assert manager.wrappers == {"openai": wrapper}
    assert manager.get_wrapper("openai/gpt-4o") is wrapper

    client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    first, second = fake.sent
    assert (first.model, first.body["messages"], first.timeout) == (
        "gpt-4o-mini",
        SYSTEM + HELLO,
        {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0},
    )
    assert (second.model, second.body["messages"], second.timeout["read"]) == (  # type: ignore[index]
        "gpt-4o",
        HELLO,
        5.0,
    )
    assert wrapper.get_timeout("gpt-4o-mini") == 10.0
    manager.close()
    assert type(client) is openai.OpenAI


def test_wrappers_of_two_providers_fall_back_across_them(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    models = ["openai/gpt-4o-mini", "azure/gpt-4o-mini", "openai/gpt-4o", "azure/gpt-4o"]
    settings: dict[str, Any] = {"max_retries": {"openai/gpt-4o-mini": 2}, "timeout": 20.0}
    openai_client, azure_client = fake.openai(), fake.azure()
    wrappers = [
        RetryWrapper(openai_client, models, **settings),  # azure keys: ignored by this one
        RetryWrapper(azure_client, models, **settings),
    ]
    manager = RetryManager(models, wrappers)
    manager.pipeline.sleep = sleeps  # the seam takes init's defaults; waits are virtual here
    fake.always("openai/gpt-4o-mini", status(503), n=2)
    openai_client.chat.completions.create(model="notdiamond", messages=HELLO)
    assert fake.keys() == ["openai/gpt-4o-mini", "openai/gpt-4o-mini", "azure/gpt-4o-mini"]
    assert sleeps.waits == [2.0]


def test_keys_of_other_providers_are_ignored_quietly(
    fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="notdiamond")
    wrapper = RetryWrapper(
        fake.openai(),
        models={"openai/gpt-4o": 0.5, "azure/gpt-4o": 0.5},
        max_retries={"openai/gpt-4o": 2, "azure/gpt-4o": 3},
        model_messages={"azure/gpt-4o": SYSTEM},
    )
    assert wrapper.get_max_retries("gpt-4o") == 2
    assert not caplog.records


def test_the_seams_refuse_what_cannot_work(fake: FakeProvider) -> None:
    with pytest.raises(TypeError, match="AsyncRetryWrapper"):
        RetryWrapper(fake.async_openai(), MODELS)
    with pytest.raises(TypeError, match="RetryWrapper"):
        AsyncRetryWrapper(fake.openai(), MODELS)
    with pytest.raises(ValueError, match="max_retries"):
        RetryWrapper(fake.openai(), MODELS, max_retries=0)
    client = fake.openai()
    wrapper = RetryWrapper(client, MODELS)
    with pytest.raises(ValueError, match="needs a 'azure' client"):
        RetryManager(["openai/gpt-4o", "azure/gpt-4o"], [wrapper])
    assert type(client) is openai.OpenAI  # nothing patched on refusal
    with pytest.raises(TypeError, match="list of RetryWrapper"):
        RetryManager(MODELS, [client])  # type: ignore[list-item]
    manager = RetryManager(MODELS, [wrapper])
    with pytest.raises(ValueError, match="already managed"):
        RetryManager(MODELS, [wrapper])
    manager.close()


@pytest.mark.asyncio
async def test_async_wrappers_and_async_with(fake: FakeProvider) -> None:
    client = fake.async_azure()
    models = ["azure/gpt-4o-mini", "azure/gpt-4o"]
    wrapper = AsyncRetryWrapper(client=client, models=models, timeout=7.0)
    async with RetryManager(models, [wrapper]) as manager:
        result = await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert result.choices[0].message.content == "hi"
        assert fake.sent[-1].timeout["read"] == 7.0  # type: ignore[index]
    assert manager.closed
    assert type(client) is openai.AsyncAzureOpenAI

    other = fake.async_openai()
    async with notdiamond.init(other, models=MODELS, async_mode=True) as managed:
        await other.chat.completions.create(model="notdiamond", messages=HELLO)
        assert type(other) is not openai.AsyncOpenAI
    assert managed.closed
    assert type(other) is openai.AsyncOpenAI


# -- _default_create: once per attempt, exactly that attempt's keyword arguments -----------------


def test_default_create_gets_exactly_each_attempts_kwargs(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client = fake.openai()
    manager = notdiamond.init(
        client,
        models=MODELS,
        max_retries={"openai/gpt-4o-mini": 2, "openai/gpt-4o": 1},
        timeout={"openai/gpt-4o-mini": 10.0, "openai/gpt-4o": 5.0},
        model_messages={"openai/gpt-4o": SYSTEM},
        sleep=sleeps,
    )
    wrapper = manager.get_wrapper("openai/gpt-4o-mini")
    fake.always("openai/gpt-4o-mini", status(500), n=2)
    with patch.object(wrapper, "_default_create", wraps=wrapper._default_create) as mock:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, temperature=0.5)
    assert mock.call_args_list == [
        call(model="gpt-4o-mini", messages=HELLO, temperature=0.5, timeout=10.0),
        call(model="gpt-4o-mini", messages=HELLO, temperature=0.5, timeout=10.0),
        call(model="gpt-4o", messages=SYSTEM + HELLO, temperature=0.5, timeout=5.0),
    ]
    mock.assert_called_with(model="gpt-4o", messages=SYSTEM + HELLO, temperature=0.5, timeout=5.0)
    assert len(fake.sent) == 3  # one HTTP request per attempt


def test_default_create_of_a_hand_built_wrapper(fake: FakeProvider) -> None:
    client = fake.openai()
    wrapper = RetryWrapper(client, MODELS, timeout=10.0)
    RetryManager(MODELS, [wrapper])
    with patch.object(wrapper, "_default_create", wraps=wrapper._default_create) as mock:
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    mock.assert_called_once_with(model="gpt-4o-mini", messages=HELLO, timeout=10.0)


@pytest.mark.asyncio
async def test_default_create_of_an_async_wrapper(fake: FakeProvider) -> None:
    client = fake.async_openai()
    wrapper = AsyncRetryWrapper(client, MODELS, timeout=10.0, max_retries=1)
    RetryManager(MODELS, [wrapper])
    fake.script("openai/gpt-4o-mini", status(400))
    with patch.object(wrapper, "_default_create", wraps=wrapper._default_create) as mock:
        await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert mock.call_args_list == [
        call(model="gpt-4o-mini", messages=HELLO, timeout=10.0),
        call(model="gpt-4o", messages=HELLO, timeout=10.0),
    ]


# -- a create replaced before the wrapper was built ---------------------------------------------


def test_each_attempt_goes_through_a_replaced_create_once(fake: FakeProvider) -> None:
    client = fake.openai()
    fake.script("openai/gpt-4o-mini", status(401))
    with patch.object(
        client.chat.completions, "create", wraps=client.chat.completions.create
    ) as mock_create:
        wrapper = RetryWrapper(client=client, models=MODELS, max_retries=1, timeout=20.0)
        manager = RetryManager(MODELS, [wrapper])
        result = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert result.choices[0].message.content == "hi"
        # The attempts, each once, with their real model and timeout; not the caller's call.
        assert mock_create.call_args_list == [
            call(model="gpt-4o-mini", messages=HELLO, timeout=20.0),
            call(model="gpt-4o", messages=HELLO, timeout=20.0),
        ]
        assert fake.keys() == ["openai/gpt-4o-mini", "openai/gpt-4o"]  # no SDK retries either
        assert [s.timeout["read"] for s in fake.sent] == [20.0, 20.0]  # type: ignore[index]

        mock_create.reset_mock()
        client.chat.completions.create(model="o3-mini", messages=HELLO)  # not configured
        mock_create.assert_called_once_with(model="o3-mini", messages=HELLO)

        manager.close()
        assert client.chat.completions.create is mock_create  # the replacement is back
        assert type(client) is openai.OpenAI


def test_a_replacement_raising_a_non_sdk_error_falls_back_at_once(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client = fake.openai()
    with patch.object(client.chat.completions, "create", side_effect=Broken()) as mock_create:
        notdiamond.init(client, models=MODELS, max_retries=3, sleep=sleeps)
        with pytest.raises(Broken) as raised:
            client.chat.completions.create(model="notdiamond", messages=HELLO)
    assert mock_create.call_args_list == [
        call(model="gpt-4o-mini", messages=HELLO, timeout=60.0),
        call(model="gpt-4o", messages=HELLO, timeout=60.0),
    ]
    assert sleeps.waits == []  # not transient: no retry, no wait
    assert [f.model for f in notdiamond.failures_of(raised.value)] == MODELS
    assert not fake.sent


@pytest.mark.asyncio
async def test_an_async_replacement_sees_each_attempt(fake: FakeProvider) -> None:
    client = fake.async_openai()

    async def broken(**kwargs: Any) -> Any:
        raise Broken()

    with patch.object(
        client.chat.completions, "create", wraps=broken, new_callable=AsyncMock
    ) as mock_create:
        wrapper = AsyncRetryWrapper(client=client, models=MODELS, max_retries=1, timeout=20.0)
        manager = RetryManager(MODELS, [wrapper])
        with pytest.raises(Broken):
            await client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
        assert mock_create.call_count == 2
        mock_create.assert_has_calls(
            [
                call(model="gpt-4o-mini", messages=HELLO, timeout=20.0),
                call(model="gpt-4o", messages=HELLO, timeout=20.0),
            ]
        )
        manager.close()
        assert client.chat.completions.create is mock_create
