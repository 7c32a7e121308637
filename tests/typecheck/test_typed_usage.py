# pyright: strict
"""A typed application's use of notdiamond: mypy --strict checks this file (``nox -s typecheck``;
``pyproject.toml`` lists ``tests.typecheck``), pyright strict accepts it too, and pytest runs it.

``assert_type`` fails the type check when an inferred type differs; at run time it does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import openai
import pytest
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from typing_extensions import assert_type

import notdiamond
from tests.fakes import FakeProvider, status


def test_a_list_of_mixed_clients_and_the_sdks_message_types(fake: FakeProvider) -> None:
    clients: list[OpenAI | AzureOpenAI] = [fake.openai(), fake.azure()]
    system: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Be brief."}]
    manager = notdiamond.init(
        clients,
        models={"openai/gpt-4o": 0.5, "azure/gpt-4o": 0.5},
        model_messages={"openai/gpt-4o": system, "azure/gpt-4o": system},
        max_retries={"openai/gpt-4o": 2, "azure/gpt-4o": 1},
        timeout=10.0,
    )
    assert_type(manager, notdiamond.RetryManager)
    response = clients[0].chat.completions.create(model="notdiamond", messages=[*system])
    assert_type(response, ChatCompletion)
    assert fake.sent[-1].body["messages"][0] == {"role": "system", "content": "Be brief."}
    manager.close()


def test_one_client_a_tuple_and_plain_dict_messages(fake: FakeProvider) -> None:
    client = fake.openai()
    plain: notdiamond.OpenAIMessagesType = [{"role": "system", "content": "Hi."}]
    with notdiamond.init(client, models=["openai/gpt-4o"], model_messages=plain):
        pass
    both: tuple[OpenAI, AzureOpenAI] = (client, fake.azure())
    with notdiamond.init(both, models=["openai/gpt-4o", "azure/gpt-4o"]) as manager:
        assert_type(manager, notdiamond.RetryManager)


def test_a_sequence_of_async_clients(fake: FakeProvider) -> None:
    clients: Sequence[AsyncOpenAI] = [fake.async_openai()]
    manager = notdiamond.init(clients, models=["openai/gpt-4o"], async_mode=True)
    manager.close()


def test_hedged_requests_for_async_clients(fake: FakeProvider) -> None:
    clients: list[AsyncOpenAI] = [fake.async_openai(), fake.async_azure()]
    hedge = notdiamond.Hedge(delay="p95", max_extra=1, initial_delay=2.0)
    with notdiamond.init(clients, models=["openai/gpt-4o", "azure/gpt-4o"], hedge=hedge):
        pass
    assert_type(hedge.delay, float | str)


def test_the_failures_of_a_call_are_typed_records(fake: FakeProvider) -> None:
    client = fake.openai()
    fake.always("openai/gpt-4o", status(500))
    fake.always("openai/gpt-4o-mini", status(400))
    notdiamond.init(
        client,
        models=["openai/gpt-4o", "openai/gpt-4o-mini"],
        max_retries={"openai/gpt-4o": 2, "openai/gpt-4o-mini": 1},
        sleep=lambda seconds: None,
    )
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="notdiamond", messages=[{"role": "user", "content": "Hi"}]
        )

    failures = notdiamond.failures_of(raised.value)
    assert_type(failures, tuple[notdiamond.Failure, ...])
    assert [(f.model, f.attempt, type(f.error)) for f in failures] == [
        ("openai/gpt-4o", 1, openai.InternalServerError),
        ("openai/gpt-4o", 2, openai.InternalServerError),
        ("openai/gpt-4o-mini", 1, openai.BadRequestError),
    ]
    assert failures[-1].error is raised.value
    assert notdiamond.failures_of(ValueError("not from a managed call")) == ()
