"""Usage examples of ``notdiamond.init``, as the original API document promises its users.

Each example runs the real OpenAI SDK against an in-process fake provider (``tests/fakes.py``),
and asserts what went over the wire.
"""

from __future__ import annotations

import openai
import pytest

import notdiamond
from tests.fakes import USER, FakeProvider, SleepRecorder, status


def test_the_documented_example(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    # ...existing workflow code, including client initialization...
    openai_client = fake.openai()
    azure_client = fake.azure()

    # Add `notdiamond.init` to the workflow.
    notdiamond.init(
        [openai_client, azure_client],
        models={"openai/gpt-4o": 0.9, "azure/gpt-4o": 0.1},
        max_retries={"openai/gpt-4o": 3, "azure/gpt-4o": 1},
        timeout={"openai/gpt-4o": 10.0, "azure/gpt-4o": 5.0},
        model_messages={
            "openai/gpt-4o": [{"role": "user", "content": "Here is a prompt for OpenAI."}],
            "azure/gpt-4o": [{"role": "user", "content": "Here is a prompt for Azure."}],
        },
        api_key="sk-...",
        backoff=2.0,
        seed=7,
        sleep=sleeps,
    )

    # ...continue existing workflow code...
    response = openai_client.chat.completions.create(model="notdiamond", messages=USER)

    assert response.choices[0].message.content == "hi"
    [sent] = fake.sent
    assert sent.key in {"openai/gpt-4o", "azure/gpt-4o"}
    prompt = (
        "Here is a prompt for OpenAI."
        if sent.provider == "openai"
        else "Here is a prompt for Azure."
    )
    assert sent.body["messages"] == [{"role": "user", "content": prompt}, *USER]
    assert sent.timeout is not None
    assert sent.timeout["read"] == (10.0 if sent.provider == "openai" else 5.0)


def test_fallback_to_another_provider(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    notdiamond.init(
        [openai_client, azure_client], models=["openai/gpt-4o", "azure/gpt-4o"], sleep=sleeps
    )
    fake.script("openai/gpt-4o", status(503))

    response = openai_client.chat.completions.create(model="gpt-4o", messages=USER)

    assert response.choices[0].message.content == "hi"
    assert fake.keys() == ["openai/gpt-4o", "azure/gpt-4o"]
    assert sleeps.waits == []  # no wait before a fallback


def test_retries_with_exponential_backoff(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    client = fake.openai()
    notdiamond.init(client, models=["openai/gpt-4o"], max_retries=3, backoff=2.0, sleep=sleeps)
    fake.script("openai/gpt-4o", status(500), status(429))

    client.chat.completions.create(model="notdiamond", messages=USER)

    assert fake.count("openai/gpt-4o") == 3
    assert sleeps.waits == [2.0, 4.0]  # backoff ** 1, backoff ** 2


def test_every_model_failing_raises_the_last_error(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    notdiamond.init(
        [openai_client, azure_client], models=["openai/gpt-4o", "azure/gpt-4o"], sleep=sleeps
    )
    fake.script("openai/gpt-4o", status(500))
    fake.script("azure/gpt-4o", status(401))

    with pytest.raises(openai.AuthenticationError) as caught:
        openai_client.chat.completions.create(model="notdiamond", messages=USER)

    failures = caught.value.notdiamond_failures  # type: ignore[attr-defined]
    assert [(key, attempt, type(exc)) for key, attempt, exc in failures] == [
        ("openai/gpt-4o", 1, openai.InternalServerError),
        ("azure/gpt-4o", 1, openai.AuthenticationError),
    ]


def test_close_restores_the_clients(fake: FakeProvider) -> None:
    client = fake.openai()
    with notdiamond.init(client, models=["openai/gpt-4o"]):
        assert type(client) is not openai.OpenAI  # patched
    assert type(client) is openai.OpenAI
    client.chat.completions.create(model="notdiamond", messages=USER)  # the SDK's own behaviour
    assert fake.sent[-1].model == "notdiamond"
