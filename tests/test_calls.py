"""SPEC 4: one call through a patched client, checked on the wire (sync clients)."""

from __future__ import annotations

import email.utils
from unittest.mock import patch

import openai
import pytest
from freezegun import freeze_time

import notdiamond
from tests.fakes import (
    USER,
    FakeProvider,
    SleepRecorder,
    connect_error,
    raises,
    read_timeout,
    status,
)

TWO = ["openai/gpt-4o", "azure/gpt-4o"]


@pytest.fixture
def clients(fake: FakeProvider) -> tuple[openai.OpenAI, openai.AzureOpenAI]:
    return fake.openai(), fake.azure()


# -- 4.1 first model ----------------------------------------------------------------------------
def test_notdiamond_takes_the_list_head(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=["azure/gpt-4o", "openai/gpt-4o-mini"], sleep=sleeps)
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["azure/gpt-4o"]


def test_full_key_and_bare_name(fake, clients, sleeps) -> None:
    openai_client, azure_client = clients
    notdiamond.init(
        list(clients), models=["openai/gpt-4o", "azure/gpt-4o", "openai/gpt-4o-mini"], sleep=sleeps
    )
    openai_client.chat.completions.create(model="openai/gpt-4o-mini", messages=USER)
    azure_client.chat.completions.create(
        model="gpt-4o", messages=USER
    )  # bare: this client's provider
    openai_client.chat.completions.create(model="azure/gpt-4o", messages=USER)  # routed to azure
    assert fake.keys() == ["openai/gpt-4o-mini", "azure/gpt-4o", "azure/gpt-4o"]


def test_unconfigured_model_passes_through_untouched(fake, clients, sleeps) -> None:
    openai_client, _ = clients  # the SDK's own max_retries=2 stays on for it
    notdiamond.init(
        list(clients),
        models=TWO,
        timeout=3.0,
        model_messages=[{"role": "system", "content": "S"}],
        sleep=sleeps,
    )
    quick = {"retry-after-ms": "1"}  # keeps the SDK's own (real) sleeps short
    fake.script("openai/gpt-3.5-turbo", status(500, quick), status(500, quick), status(500, quick))
    with pytest.raises(openai.InternalServerError):
        openai_client.with_options(max_retries=2).chat.completions.create(
            model="gpt-3.5-turbo", messages=USER, temperature=0.5
        )
    sent = fake.sent
    assert [s.key for s in sent] == ["openai/gpt-3.5-turbo"] * 3  # the SDK's retries, no fallback
    assert sent[0].body == {"model": "gpt-3.5-turbo", "messages": USER, "temperature": 0.5}
    assert sent[0].timeout is not None
    assert sent[0].timeout["read"] == 600.0
    assert sleeps.waits == []


def test_other_endpoints_pass_through(fake, clients) -> None:
    openai_client, _ = clients
    notdiamond.init(list(clients), models=TWO)
    openai_client.embeddings.create(model="notdiamond", input="x")
    assert fake.sent[-1].path.endswith("/embeddings")
    assert fake.sent[-1].body["model"] == "notdiamond"


# -- 4.2 attempts -------------------------------------------------------------------------------
def test_attempt_arguments(fake, clients, sleeps) -> None:
    notdiamond.init(
        list(clients),
        models=TWO,
        timeout={"openai/gpt-4o": 4.0, "azure/gpt-4o": 9.0},
        model_messages={"azure/gpt-4o": [{"role": "system", "content": "Azure prefix"}]},
        sleep=sleeps,
    )
    fake.script("openai/gpt-4o", status(400))
    clients[0].chat.completions.create(
        model="notdiamond",
        messages=USER,
        temperature=0.2,
        max_tokens=5,
        extra_headers={"X-Trace": "t1"},
    )
    first, second = fake.sent
    assert first.body == {"model": "gpt-4o", "messages": USER, "temperature": 0.2, "max_tokens": 5}
    assert second.body == {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "Azure prefix"}, *USER],
        "temperature": 0.2,
        "max_tokens": 5,
    }
    assert (first.timeout["read"], second.timeout["read"]) == (4.0, 9.0)
    assert first.headers["x-trace"] == second.headers["x-trace"] == "t1"


def test_model_messages_prepended_on_every_attempt(fake, clients, sleeps) -> None:
    prefix = [{"role": "developer", "content": "Be brief."}]
    notdiamond.init(list(clients), models=TWO, max_retries=3, model_messages=prefix, sleep=sleeps)
    fake.script("openai/gpt-4o", status(500), status(500))
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert [s.body["messages"] for s in fake.sent] == [prefix + USER] * 3


def test_caller_timeout_wins(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=TWO, timeout=4.0, sleep=sleeps)
    clients[0].chat.completions.create(model="notdiamond", messages=USER, timeout=1.5)
    assert fake.sent[0].timeout["read"] == 1.5


# -- 4.3 / 4.7 same-model retries, exact counts ------------------------------------------------
@pytest.mark.parametrize(
    "failure",
    [
        status(408),
        status(409),
        status(429),
        status(500),
        status(502),
        status(503),
        read_timeout(),
        connect_error(),
    ],
    ids=["408", "409", "429", "500", "502", "503", "read-timeout", "connect-error"],
)
def test_transient_errors_retry_the_same_model(fake, clients, sleeps, failure) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=3, sleep=sleeps)
    fake.always("openai/gpt-4o", failure, n=3)
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    # exactly three requests to the model (the SDK's own retries would have made nine), then fallback
    assert fake.keys() == ["openai/gpt-4o"] * 3 + ["azure/gpt-4o"]
    assert all(s.headers["x-stainless-retry-count"] == "0" for s in fake.sent)
    assert sleeps.waits == [2.0, 4.0]


@pytest.mark.parametrize(
    "failure",
    [status(400), status(401), status(403), status(404), status(422)],
    ids=["400", "401", "403", "404", "422"],
)
def test_permanent_errors_fall_back_at_once(fake, clients, sleeps, failure) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=3, sleep=sleeps)
    fake.script("openai/gpt-4o", failure)
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o", "azure/gpt-4o"]
    assert sleeps.waits == []


def test_other_exceptions_fall_back_at_once(fake, clients, sleeps) -> None:
    manager = notdiamond.init(list(clients), models=TWO, max_retries=3, sleep=sleeps)
    wrapper = manager.get_wrapper("openai/gpt-4o")
    real = wrapper._default_create
    seen = []

    def broken_first(**kwargs):
        seen.append(kwargs["model"])
        if len(seen) == 1:
            raise RuntimeError("a bug below the SDK")
        return real(**kwargs)

    with patch.object(wrapper, "_default_create", side_effect=broken_first):
        clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert seen == ["gpt-4o"]  # not retried on openai...
    assert fake.keys() == ["azure/gpt-4o"]  # ...fell back at once
    assert sleeps.waits == []


def test_base_exceptions_propagate_at_once(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=3, sleep=sleeps)
    fake.script("openai/gpt-4o", raises(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o"]


def test_sdk_retries_option_turns_them_back_on(fake, sleeps) -> None:
    client = fake.openai(max_retries=2)
    notdiamond.init(client, models=["openai/gpt-4o"], max_retries=2, sleep=sleeps, sdk_retries=True)
    fake.script(
        "openai/gpt-4o", status(400, {"x-should-retry": "true", "retry-after-ms": "1"}), status(400)
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.count("openai/gpt-4o") == 2  # one SDK retry inside our single (permanent) failure


# -- 4.4 waits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("backoff", "expected"), [(2.0, [2.0, 4.0, 8.0]), (1.5, [1.5, 2.25, 3.375]), (0.0, [])]
)
def test_backoff_schedule(fake, clients, sleeps, backoff, expected) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=4, backoff=backoff, sleep=sleeps)
    fake.always("openai/gpt-4o", status(500), n=4)
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o"] * 4 + ["azure/gpt-4o"]
    assert sleeps.waits == expected  # a zero wait does not call sleep at all


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "5500"}, 5.5),
        ({"retry-after-ms": "5500", "retry-after": "9"}, 5.5),
        ({"retry-after": "1"}, 2.0),  # never below the backoff
        ({"retry-after": "soon"}, 2.0),  # unparseable: ignored
    ],
)
def test_retry_after_raises_the_wait(fake, clients, sleeps, headers, wait) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=2, sleep=sleeps)
    fake.script("openai/gpt-4o", status(429, headers))
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o"]
    assert sleeps.waits == [wait]


@freeze_time("2026-11-25 12:00:00")
def test_retry_after_as_http_date(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=2, sleep=sleeps)
    when = email.utils.format_datetime(
        email.utils.parsedate_to_datetime("Wed, 25 Nov 2026 12:00:30 GMT")
    )
    fake.script("openai/gpt-4o", status(503, {"retry-after": when}))
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert sleeps.waits == [30.0]


def test_retry_after_beyond_the_cap_falls_back_at_once(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=3, sleep=sleeps, retry_after_cap=30.0)
    fake.script("openai/gpt-4o", status(429, {"retry-after": "31"}))
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o", "azure/gpt-4o"]
    assert sleeps.waits == []


# -- 4.5 fallback ------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["openai-first", "azure-first"])
def test_cross_provider_fallback_both_ways_any_client_order(fake, sleeps, order) -> None:
    openai_client, azure_client = fake.openai(), fake.azure()
    client_list = (
        [openai_client, azure_client] if order == "openai-first" else [azure_client, openai_client]
    )
    notdiamond.init(client_list, models=["azure/gpt-4o", "openai/gpt-4o"], sleep=sleeps)
    fake.script("azure/gpt-4o", status(500), status(500))
    openai_client.chat.completions.create(model="notdiamond", messages=USER)
    azure_client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["azure/gpt-4o", "openai/gpt-4o", "azure/gpt-4o", "openai/gpt-4o"]


def test_list_falls_back_in_list_order(fake, clients, sleeps) -> None:
    models = ["openai/gpt-4o-mini", "openai/gpt-4o", "azure/gpt-4o"]
    notdiamond.init(list(clients), models=models, sleep=sleeps)
    fake.script("openai/gpt-4o", status(500))
    fake.script("openai/gpt-4o-mini", status(500))
    clients[0].chat.completions.create(model="openai/gpt-4o", messages=USER)
    # the called model failed first; the rest follow the list, failed ones removed
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o-mini", "azure/gpt-4o"]


def test_zero_weight_is_never_used_even_as_fallback(fake, clients, sleeps) -> None:
    notdiamond.init(
        list(clients), models={"openai/gpt-4o": 1.0, "azure/gpt-4o": 0.0}, sleep=sleeps, seed=1
    )
    fake.always("openai/gpt-4o", status(500), n=50)
    for _ in range(50):
        with pytest.raises(openai.InternalServerError):
            clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert set(fake.keys()) == {"openai/gpt-4o"}


def test_all_failed_raises_last_error_with_earlier_ones_noted(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=2, sleep=sleeps)
    fake.always("openai/gpt-4o", status(503), n=2)
    fake.always("azure/gpt-4o", read_timeout(), n=2)
    with pytest.raises(openai.APITimeoutError) as caught:
        clients[0].chat.completions.create(model="notdiamond", messages=USER)
    error = caught.value
    assert [(k, n) for k, n, _ in error.notdiamond_failures] == [  # type: ignore[attr-defined]
        ("openai/gpt-4o", 1),
        ("openai/gpt-4o", 2),
        ("azure/gpt-4o", 1),
        ("azure/gpt-4o", 2),
    ]
    note = "\n".join(getattr(error, "__notes__", []))
    assert "openai/gpt-4o attempt 1: InternalServerError (503)" in note
    assert "azure/gpt-4o attempt 1: APITimeoutError" in note
    assert error.__cause__ is not None  # the SDK's own chaining (the transport error) is kept
    assert sleeps.waits == [2.0, 2.0]


# -- 4.6 result -------------------------------------------------------------------------------
def test_result_is_the_sdks_own(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=TWO, sleep=sleeps)
    fake.script("openai/gpt-4o", status(500))
    result = clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert type(result) is openai.types.chat.ChatCompletion
    assert result.model == "gpt-4o"
    assert result.choices[0].message.content == "hi"


# -- optional jitter ---------------------------------------------------------------------------
def test_jitter_shortens_waits_within_bounds_reproducibly(fake, sleeps) -> None:
    def waits(seed: int) -> list[float]:
        local, recorder = FakeProvider(), SleepRecorder()
        client = local.openai()
        with notdiamond.init(
            client, models=["openai/gpt-4o"], max_retries=4, jitter=0.5, seed=seed, sleep=recorder
        ):
            local.always("openai/gpt-4o", status(500), n=3)
            client.chat.completions.create(model="notdiamond", messages=USER)
        return recorder.waits

    first = waits(1)
    assert len(first) == 3
    for k, wait in enumerate(first, start=1):
        assert 0.5 * 2.0**k < wait <= 2.0**k
    assert waits(1) == first
    assert waits(2) != first


def test_jitter_never_undercuts_retry_after(fake, clients, sleeps) -> None:
    notdiamond.init(list(clients), models=TWO, max_retries=2, jitter=1.0, seed=3, sleep=sleeps)
    fake.script("openai/gpt-4o", status(429, {"retry-after": "3"}))
    clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert sleeps.waits == [3.0]
