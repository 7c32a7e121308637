"""SPEC 5: the manager's lifecycle, its test seams, selection randomness and logging."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from unittest.mock import patch

import openai
import pytest

import notdiamond
from tests.fakes import USER, FakeProvider, SleepRecorder, status

TWO = ["openai/gpt-4o", "azure/gpt-4o"]


def test_close_restores_every_client_exactly(fake: FakeProvider) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    before = (dict(openai_client.__dict__), dict(azure_client.__dict__))
    manager = notdiamond.init([openai_client, azure_client], models=TWO)
    copy = openai_client.with_options(timeout=3.0)
    manager.close()
    assert type(openai_client) is openai.OpenAI
    assert type(azure_client) is openai.AzureOpenAI
    assert type(copy) is openai.OpenAI
    assert (openai_client.__dict__, azure_client.__dict__) == before
    manager.close()  # idempotent
    assert manager.closed


def test_with_block_restores_on_error(fake: FakeProvider) -> None:
    client = fake.openai()
    with pytest.raises(RuntimeError), notdiamond.init(client, models=["openai/gpt-4o"]):
        raise RuntimeError("user code failed")
    assert type(client) is openai.OpenAI


def test_init_twice_replaces_and_never_stacks(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    client = fake.openai()
    first = notdiamond.init(client, models=["openai/gpt-4o"], max_retries=3, sleep=sleeps)
    patched_type = type(client)
    second = notdiamond.init(client, models=["openai/gpt-4o-mini"], max_retries=2, sleep=sleeps)
    assert type(client) is patched_type  # one hook, not two
    fake.always("openai/gpt-4o-mini", status(500), n=2)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert (
        fake.keys() == ["openai/gpt-4o-mini"] * 2
    )  # the second config alone: 2 attempts, not 3 x 2
    first.close()  # the replaced manager no longer owns the client
    assert type(client) is patched_type
    second.close()
    assert type(client) is openai.OpenAI


def test_copy_made_before_reinit_follows_the_new_config(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client = fake.openai()
    notdiamond.init(client, models=["openai/gpt-4o"], sleep=sleeps)
    copy = client.with_options(timeout=5.0)
    notdiamond.init(client, models=["openai/gpt-4o-mini"], sleep=sleeps)
    copy.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o-mini"]


def test_get_wrapper_and_getters(fake: FakeProvider) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    manager = notdiamond.init(
        [openai_client, azure_client],
        models=TWO,
        max_retries={"azure/gpt-4o": 4},
        timeout=12.0,
        backoff=1.5,
    )
    wrapper = manager.get_wrapper("azure/gpt-4o")
    assert isinstance(wrapper, notdiamond.RetryWrapper)
    assert wrapper._client is azure_client
    assert (
        wrapper.get_max_retries("azure/gpt-4o"),
        wrapper.get_timeout("azure/gpt-4o"),
        wrapper.get_backoff("azure/gpt-4o"),
    ) == (4, 12.0, 1.5)
    assert manager.get_wrapper("openai/gpt-4o")._client is openai_client
    with pytest.raises(ValueError, match="not a configured model"):
        manager.get_wrapper("openai/gpt-5")
    with pytest.raises(ValueError, match="not a configured model"):
        wrapper.get_timeout("azure/gpt-5")


def test_async_clients_get_async_wrappers(fake: FakeProvider) -> None:
    manager = notdiamond.init([fake.async_openai()], models=["openai/gpt-4o"], async_mode=True)
    assert isinstance(manager.get_wrapper("openai/gpt-4o"), notdiamond.AsyncRetryWrapper)


def test_get_next_model_list_and_weights(fake: FakeProvider) -> None:
    clients = [fake.openai(), fake.azure()]
    ordered = notdiamond.init(
        clients, models=["openai/gpt-4o-mini", "openai/gpt-4o", "azure/gpt-4o"]
    )
    assert ordered.get_next_model(["openai/gpt-4o"]) == "openai/gpt-4o-mini"
    assert ordered.get_next_model(["openai/gpt-4o-mini", "openai/gpt-4o"]) == "azure/gpt-4o"
    assert ordered.get_next_model(["openai/gpt-4o-mini", "openai/gpt-4o", "azure/gpt-4o"]) is None
    weighted = notdiamond.init(clients, models={"openai/gpt-4o": 0.9, "azure/gpt-4o": 0.1})
    assert {weighted.get_next_model(["openai/gpt-4o"]) for _ in range(20)} == {"azure/gpt-4o"}


def test_default_create_sees_every_attempt(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    manager = notdiamond.init(
        [openai_client, azure_client],
        models=TWO,
        max_retries={"openai/gpt-4o": 2},
        timeout={"openai/gpt-4o": 7.0},
        sleep=sleeps,
    )
    fake.always("openai/gpt-4o", status(500), n=2)
    openai_wrapper = manager.get_wrapper("openai/gpt-4o")
    azure_wrapper = manager.get_wrapper("azure/gpt-4o")
    with (
        patch.object(openai_wrapper, "_default_create", wraps=openai_wrapper._default_create) as o,
        patch.object(azure_wrapper, "_default_create", wraps=azure_wrapper._default_create) as a,
    ):
        openai_client.chat.completions.create(model="notdiamond", messages=USER, temperature=0.1)
    assert [c.kwargs for c in o.call_args_list] == [
        {"model": "gpt-4o", "messages": USER, "temperature": 0.1, "timeout": 7.0}
    ] * 2
    assert [c.kwargs for c in a.call_args_list] == [
        {"model": "gpt-4o", "messages": USER, "temperature": 0.1, "timeout": 60.0}
    ]


def test_seed_makes_selection_reproducible(fake: FakeProvider) -> None:
    weights = {"openai/gpt-4o": 0.5, "openai/gpt-4o-mini": 0.3, "openai/o3": 0.2}

    def draws(seed: int | None) -> list[str]:
        local = FakeProvider()
        client = local.openai()
        with notdiamond.init(client, models=weights, seed=seed):
            for _ in range(60):
                client.chat.completions.create(model="notdiamond", messages=USER)
        return local.keys()

    assert draws(11) == draws(11)
    assert draws(11) != draws(12)
    assert set(draws(11)) == {"openai/gpt-4o", "openai/gpt-4o-mini", "openai/o3"}


def test_many_threads_at_once(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    notdiamond.init(
        [openai_client, azure_client],
        models={"openai/gpt-4o": 0.5, "azure/gpt-4o": 0.5},
        seed=3,
        sleep=sleeps,
    )
    fake.always("openai/gpt-4o", status(500), n=100)  # fails 100 times, then recovers
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(25):
                r = openai_client.chat.completions.create(model="notdiamond", messages=USER)
                results.append(r.choices[0].message.content or "")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 200
    sent = Counter(fake.keys())
    # the first 100 openai requests fail, each followed by exactly one azure fallback
    failures = min(100, sent["openai/gpt-4o"])
    assert sent["openai/gpt-4o"] + sent["azure/gpt-4o"] == 200 + failures


def test_logs_name_model_attempt_error_and_status_never_secrets(
    fake: FakeProvider, sleeps: SleepRecorder, nd_logs: pytest.LogCaptureFixture
) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    notdiamond.init(
        [openai_client, azure_client],
        models=TWO,
        max_retries=2,
        api_key="nd-secret-key",
        sleep=sleeps,
        model_messages=[{"role": "system", "content": "TOP-SECRET-PROMPT"}],
    )
    fake.always("openai/gpt-4o", status(429), n=2)
    openai_client.chat.completions.create(
        model="notdiamond", messages=[{"role": "user", "content": "PRIVATE-USER-TEXT"}]
    )
    text = "\n".join(r.getMessage() for r in nd_logs.records if r.name == "notdiamond")
    assert (
        "openai/gpt-4o attempt 1/2 failed with RateLimitError (HTTP 429); retrying in 2.000s"
        in text
    )
    assert (
        "openai/gpt-4o attempt 2/2 failed with RateLimitError (HTTP 429); falling back to azure/gpt-4o"
        in text
    )
    for secret in (
        "nd-secret-key",
        "sk-test-secret-key",
        "azure-test-secret-key",
        "TOP-SECRET-PROMPT",
        "PRIVATE-USER-TEXT",
    ):
        assert secret not in text


def test_library_never_sets_the_logger_level(fake: FakeProvider) -> None:
    logger = logging.getLogger("notdiamond")
    before = (logger.level, list(logger.handlers))
    notdiamond.init(fake.openai(), models=["openai/gpt-4o"])
    assert (logger.level, list(logger.handlers)) == before


def test_observer_traces_every_attempt(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    events: list[notdiamond.AttemptEvent] = []
    client, azure = fake.openai(), fake.azure()
    notdiamond.init(
        [client, azure],
        models=TWO,
        max_retries=2,
        sleep=sleeps,
        clock=sleeps.clock,
        observer=events.append,
    )
    fake.always("openai/gpt-4o", status(500), n=2)
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert [
        (e.model, e.attempt, e.decision, e.status_code, e.wait_before, e.next_wait) for e in events
    ] == [
        ("openai/gpt-4o", 1, "retry", 500, 0.0, 2.0),
        ("openai/gpt-4o", 2, "fallback", 500, 2.0, None),
        ("azure/gpt-4o", 1, "success", None, 0.0, None),
    ]
    assert events[1].started == 2.0  # the virtual clock advanced by the backoff wait
    assert len({e.call_id for e in events}) == 1
