"""SPEC 1-3: every invalid input is refused at ``init`` with an error naming the fix; nothing patched."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import openai
import pytest

import notdiamond
from tests.fakes import USER, FakeProvider

M = ["openai/gpt-4o"]


def _refused(
    fake: FakeProvider, error: type[Exception], match: str, *clients: Any, **kwargs: Any
) -> None:
    clients = clients or (fake.openai(),)
    before = [type(c) for c in clients]
    with pytest.raises(error, match=match):
        notdiamond.init(list(clients), **kwargs)
    assert [type(c) for c in clients] == before, "a refused init must patch nothing"
    assert all("_notdiamond_slot" not in c.__dict__ for c in clients)


@pytest.mark.parametrize(
    ("models", "error", "match"),
    [
        (["gpt-4o"], ValueError, r"'gpt-4o' is not a model key.*'openai/gpt-4o'"),
        (["openai/"], ValueError, "not a model key"),
        (["/gpt-4o"], ValueError, "not a model key"),
        (["anthropic/claude"], ValueError, "provider 'anthropic'.*'openai/...' for OpenAI"),
        ([42], TypeError, "strings of the form"),
        ([], ValueError, "list is empty"),
        ({}, ValueError, "dict is empty"),
        ("openai/gpt-4o", TypeError, r"Wrap it in a list: \['openai/gpt-4o'\]"),
        (None, TypeError, "models must be a list"),
        (["openai/gpt-4o", "openai/gpt-4o"], ValueError, "more than once"),
        ({"openai/gpt-4o": -0.1}, ValueError, "finite numbers >= 0"),
        ({"openai/gpt-4o": math.nan}, ValueError, "finite numbers >= 0"),
        ({"openai/gpt-4o": math.inf}, ValueError, "finite numbers >= 0"),
        ({"openai/gpt-4o": "0.5"}, TypeError, "must be a number"),
        ({"openai/gpt-4o": True}, TypeError, "must be a number"),
        ({"openai/gpt-4o": 0, "openai/gpt-4o-mini": 0.0}, ValueError, "every weight is 0"),
        (["azure/gpt-4o"], ValueError, "needs a 'azure' client.*AzureOpenAI"),
    ],
)
def test_models_refused(
    fake: FakeProvider, models: Any, error: type[Exception], match: str
) -> None:
    _refused(fake, error, match, models=models)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_retries": 0}, ValueError, "Use 1 or more"),
        ({"max_retries": -1}, ValueError, "Use 1 or more"),
        ({"max_retries": 1.5}, TypeError, "whole number"),
        ({"max_retries": True}, TypeError, "whole number"),
        ({"max_retries": None}, TypeError, "whole number"),
        ({"max_retries": {"openai/gpt-4o": 0}}, ValueError, r"max_retries\['openai/gpt-4o'\]"),
        ({"max_retries": {"gpt-4o": 2}}, ValueError, "'openai/gpt-4o'"),
        ({"timeout": 0}, ValueError, "> 0"),
        ({"timeout": -5}, ValueError, "> 0"),
        ({"timeout": math.inf}, ValueError, "finite"),
        ({"timeout": "10"}, TypeError, "seconds per attempt"),
        ({"timeout": {"openai/gpt-4o": 0.0}}, ValueError, r"timeout\['openai/gpt-4o'\]"),
        ({"backoff": -1}, ValueError, ">= 0"),
        ({"backoff": math.nan}, ValueError, ">= 0"),
        ({"backoff": {"gpt-4o": 2.0}}, ValueError, "'openai/gpt-4o'"),
        (
            {"model_messages": {"openai/gpt-4o": [{"role": "assistant", "content": "x"}]}},
            ValueError,
            "'assistant'.*system",
        ),
        (
            {"model_messages": {"openai/gpt-4o": [{"role": "tool", "content": "x"}]}},
            ValueError,
            "'tool'",
        ),
        ({"model_messages": {"openai/gpt-4o": "be brief"}}, TypeError, "list of messages"),
        ({"model_messages": {"openai/gpt-4o": [{"content": "x"}]}}, TypeError, "'role'"),
        ({"model_messages": {"role": "system", "content": "x"}}, TypeError, "single message"),
        ({"model_messages": {"gpt-4o": []}}, ValueError, "'openai/gpt-4o'"),
        ({"api_key": 123}, TypeError, "api_key must be a string"),
        ({"seed": "1"}, TypeError, "seed must be an int"),
        ({"sed": 1}, TypeError, "did you mean 'seed'"),
        ({"sleep": asyncio.sleep}, TypeError, "sync clients need a plain function"),
        ({"sleep": 5}, TypeError, "sleep must be callable"),
        ({"clock": 5}, TypeError, "clock must be callable"),
        ({"sdk_retries": 1}, TypeError, "True or False"),
        ({"retry_after_cap": -1}, ValueError, "retry_after_cap"),
        ({"observer": "print"}, TypeError, "observer must be callable"),
        ({"jitter": 1.5}, ValueError, "from 0 \\(off\\) to 1"),
        ({"jitter": -0.1}, ValueError, "jitter"),
    ],
)
def test_settings_refused(
    fake: FakeProvider, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    _refused(fake, error, match, models=M, **kwargs)


def test_async_client_needs_async_sleep(fake: FakeProvider) -> None:
    _refused(fake, TypeError, "coroutine function", fake.async_openai(), models=M, sleep=time.sleep)


def test_two_clients_for_one_provider(fake: FakeProvider) -> None:
    _refused(
        fake,
        ValueError,
        "two clients for provider 'openai'",
        fake.openai(),
        fake.openai(),
        models=M,
    )


def test_same_client_twice(fake: FakeProvider) -> None:
    client = fake.openai()
    _refused(fake, ValueError, "listed twice", client, client, models=M)


def test_sync_and_async_mixed(fake: FakeProvider) -> None:
    _refused(
        fake,
        ValueError,
        "once for the sync clients",
        fake.openai(),
        fake.async_azure(),
        models=["openai/gpt-4o", "azure/gpt-4o"],
    )


def test_not_a_client(fake: FakeProvider) -> None:
    with pytest.raises(TypeError, match="got str"):
        notdiamond.init("sk-my-key", models=M)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list is empty"):
        notdiamond.init([], models=M)


def test_settings_for_other_models_warn_and_are_ignored(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    client = fake.openai()
    shared = {"openai/gpt-4o": 3, "azure/gpt-4o": 5}  # one dict serving several init calls
    manager = notdiamond.init(client, models=M, max_retries=shared)
    assert manager.get_wrapper("openai/gpt-4o").get_max_retries("openai/gpt-4o") == 3
    warnings = [r.getMessage() for r in nd_logs.records if r.levelno == logging.WARNING]
    assert any("'azure/gpt-4o'" in w and "max_retries" in w for w in warnings)


def test_defaults_for_models_missing_from_a_settings_dict(fake: FakeProvider) -> None:
    manager = notdiamond.init(
        [fake.openai(), fake.azure()],
        models=["openai/gpt-4o", "azure/gpt-4o"],
        max_retries={"openai/gpt-4o": 3},
        timeout={"azure/gpt-4o": 5.0},
        backoff={"openai/gpt-4o": 1.5},
    )
    azure = manager.get_wrapper("azure/gpt-4o")
    assert (
        azure.get_max_retries("azure/gpt-4o"),
        azure.get_timeout("azure/gpt-4o"),
        azure.get_backoff("azure/gpt-4o"),
    ) == (1, 5.0, 2.0)
    op = manager.get_wrapper("openai/gpt-4o")
    assert (op.get_max_retries("gpt-4o"), op.get_timeout("gpt-4o"), op.get_backoff("gpt-4o")) == (
        3,
        60.0,
        1.5,
    )


def test_async_mode_contradiction_warns_but_manages(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    client = fake.openai()
    notdiamond.init(client, models=M, async_mode=True)
    assert any("async_mode=True" in r.getMessage() for r in nd_logs.records)
    assert type(client) is not openai.OpenAI
    assert isinstance(client, openai.OpenAI)
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.sent[-1].model == "gpt-4o"


def test_api_key_falls_back_to_environment(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTDIAMOND_API_KEY", "nd-env-secret")
    manager = notdiamond.init(fake.openai(), models=M)
    assert manager._api_key == "nd-env-secret"
    assert "nd-env-secret" not in repr(manager)
    explicit = notdiamond.init(fake.openai(), models=M, api_key="nd-explicit")
    assert explicit._api_key == "nd-explicit"


def test_model_key_provider_is_text_before_first_slash(fake: FakeProvider) -> None:
    client = fake.openai()
    notdiamond.init(client, models=["openai/ft:org/my-model"])
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.sent[-1].model == "ft:org/my-model"


def test_seed_names_importable() -> None:
    from notdiamond.toolkit._retry import (  # noqa: F401
        AsyncRetryWrapper,
        ClientType,
        ModelType,
        OpenAIMessagesType,
        RetryManager,
        RetryWrapper,
    )

    assert RetryManager is notdiamond.RetryManager
    assert (RetryWrapper, AsyncRetryWrapper) == (
        notdiamond.RetryWrapper,
        notdiamond.AsyncRetryWrapper,
    )


def test_init_signature_keeps_the_seeds_defaults() -> None:
    import inspect

    params = inspect.signature(notdiamond.init).parameters
    assert list(params)[:8] == [
        "client",
        "models",
        "max_retries",
        "timeout",
        "model_messages",
        "api_key",
        "async_mode",
        "backoff",
    ]
    defaults = {
        name: p.default for name, p in params.items() if p.default is not inspect.Parameter.empty
    }
    assert defaults == {
        "max_retries": 1,
        "timeout": 60.0,
        "model_messages": None,
        "api_key": None,
        "async_mode": False,
        "backoff": 2.0,
    }


def test_shared_settings_may_name_other_providers(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    notdiamond.init(
        fake.openai(), models=M, timeout={"openai/gpt-4o": 5.0, "anthropic/claude": 9.0}
    )
    assert any("'anthropic/claude'" in r.getMessage() for r in nd_logs.records)


# -- hints that are right (issue 7 §2) -----------------------------------------------------


def _message(fake: FakeProvider, error: type[Exception], **kwargs: Any) -> str:
    client = fake.openai()
    with pytest.raises(error) as caught:
        notdiamond.init(client, **kwargs)
    assert type(client) is openai.OpenAI
    return str(caught.value)


@pytest.mark.parametrize(
    ("key", "suggested"),
    [
        ("openai:gpt-4o", "'openai/gpt-4o'"),
        ("azure:gpt-4o-mini", "'azure/gpt-4o-mini'"),
        ("OpenAI:gpt-4o", "'openai/gpt-4o'"),
        ("openai ft:gpt-4o:org::id", "'openai/ft:gpt-4o:org::id'"),
    ],
)
def test_provider_with_a_wrong_separator_is_not_doubled(
    fake: FakeProvider, key: str, suggested: str
) -> None:
    message = _message(fake, ValueError, models=[key])
    assert suggested in message
    assert f"/{key}" not in message  # not 'openai/openai:gpt-4o'


def test_a_bare_model_still_suggests_the_full_key(fake: FakeProvider) -> None:
    message = _message(fake, ValueError, models=["ft:gpt-4o:org::id"])
    assert "'openai/ft:gpt-4o:org::id'" in message


@pytest.mark.parametrize("provider", ["anthropic", "google", "mistral"])
def test_unknown_provider_gets_no_blind_openai_suggestion(
    fake: FakeProvider, provider: str
) -> None:
    message = _message(fake, ValueError, models=[f"{provider}/some-model"])
    assert f"provider {provider!r}" in message
    assert "'openai/some-model'" not in message
    assert "base_url" in message


@pytest.mark.parametrize(
    ("provider", "meant"), [("OpenAI", "openai"), ("opneai", "openai"), ("Azure", "azure")]
)
def test_provider_one_typo_away_is_suggested(fake: FakeProvider, provider: str, meant: str) -> None:
    message = _message(fake, ValueError, models=[f"{provider}/gpt-4o"])
    assert f"Did you mean '{meant}/gpt-4o'?" in message


@pytest.mark.parametrize(
    ("option", "meant"),
    [
        ("retries", "max_retries"),
        ("max_retry", "max_retries"),
        ("timeouts", "timeout"),
        ("model", "models"),
        ("apikey", "api_key"),
        ("back_off", "backoff"),
        ("jiter", "jitter"),
        ("retry_after", "retry_after_cap"),
    ],
)
def test_unknown_option_suggestion_covers_the_parameters(
    fake: FakeProvider, option: str, meant: str
) -> None:
    message = _message(fake, TypeError, models=M, **{option: 2})
    assert f"did you mean {meant!r}?" in message
    listed = message.split("are: ", 1)[1]
    for name in ("max_retries", "timeout", "model_messages", "backoff", "seed", "jitter"):
        assert name in listed


def test_unknown_option_without_a_close_name_lists_them_all(fake: FakeProvider) -> None:
    message = _message(fake, TypeError, models=M, zzz=1)
    assert "'zzz'" in message
    assert "did you mean" not in message
    assert "max_retries" in message


# -- a settings key one typo from a configured model is refused (issue 7 §2) ------------------


@pytest.mark.parametrize("setting", ["max_retries", "timeout", "backoff", "model_messages"])
@pytest.mark.parametrize(
    "typo", ["openai/gpt4o", "openai/gpt-4oo", "openai/gtp-4o", "opneai/gpt-4o", "OpenAI/GPT-4o"]
)
def test_settings_key_one_typo_away_is_refused(fake: FakeProvider, setting: str, typo: str) -> None:
    value: object = [{"role": "system", "content": "x"}] if setting == "model_messages" else 3
    _refused(
        fake,
        ValueError,
        rf"{setting}: '{typo}' is not a configured model.*Did you mean 'openai/gpt-4o'\?",
        models=["openai/gpt-4o", "openai/gpt-4o-mini"],
        **{setting: {typo: value}},
    )


def test_settings_key_one_typo_away_from_an_entry_that_exists_is_only_ignored(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    # One dict serving several init calls may hold 'openai/gpt-4' beside 'openai/gpt-4o':
    # the configured model has its own entry, so the other one is not a typo of it.
    manager = notdiamond.init(
        fake.openai(), models=M, max_retries={"openai/gpt-4o": 3, "openai/gpt-4": 5}
    )
    assert manager.get_wrapper("openai/gpt-4o").get_max_retries("gpt-4o") == 3
    assert any("'openai/gpt-4'" in r.getMessage() for r in nd_logs.records)


def test_settings_keys_further_away_keep_warn_and_ignore(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    manager = notdiamond.init(
        fake.openai(), models=M, timeout={"openai/gpt-4o-mini": 5.0, "azure/gpt-4o": 7.0}
    )
    assert manager.get_wrapper("openai/gpt-4o").get_timeout("gpt-4o") == 60.0
    warned = " ".join(r.getMessage() for r in nd_logs.records if r.levelno == logging.WARNING)
    assert "'openai/gpt-4o-mini'" in warned
    assert "'azure/gpt-4o'" in warned
