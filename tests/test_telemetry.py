"""Observability: OpenTelemetry spans (in-memory exporter), log records, ``served_models()``."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import notdiamond
from notdiamond._pipeline import run_async, run_sync
from tests.fakes import USER, FakeProvider, SleepRecorder, ok, status

TWO = ["openai/gpt-4o", "azure/gpt-4o"]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A configured SDK tracer provider, as ``trace.set_tracer_provider`` would make global.

    Patched in rather than set globally: the global provider can be set once per process, and
    the rest of the suite runs untraced.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exporter
    provider.shutdown()


def _by_name(finished: tuple[ReadableSpan, ...]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    calls = [s for s in finished if s.attributes and "notdiamond.attempt" not in s.attributes]
    attempts = [s for s in finished if s.attributes and "notdiamond.attempt" in s.attributes]
    assert len(calls) == 1
    return calls[0], sorted(attempts, key=lambda s: s.start_time or 0)


def _attempt_view(span: ReadableSpan) -> dict[str, Any]:
    attributes = dict(span.attributes or {})
    attributes.pop("notdiamond.call_id")
    return attributes


# -- OpenTelemetry -------------------------------------------------------------------------------


def test_a_call_span_with_one_child_span_per_attempt(
    fake: FakeProvider, sleeps: SleepRecorder, spans: InMemorySpanExporter
) -> None:
    client = fake.openai()
    notdiamond.init(
        [client, fake.azure()], models=TWO, max_retries=2, backoff=2.0, sleep=sleeps, seed=1
    )
    fake.always("openai/gpt-4o", status(500), n=2)
    client.chat.completions.create(model="notdiamond", messages=USER)

    call, attempts = _by_name(spans.get_finished_spans())
    assert call.name == "chat notdiamond"
    assert call.kind is trace.SpanKind.CLIENT
    assert dict(call.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "notdiamond",
        "notdiamond.call_id": call.attributes["notdiamond.call_id"],  # type: ignore[index]
        "notdiamond.model_key": "azure/gpt-4o",
        "gen_ai.provider.name": "azure.ai.openai",
        "notdiamond.attempts": 3,
    }
    assert call.status.status_code is StatusCode.UNSET
    assert [a.name for a in attempts] == ["chat gpt-4o"] * 3
    assert all(a.parent is not None and a.parent.span_id == call.context.span_id for a in attempts)
    assert [_attempt_view(a) for a in attempts] == [
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai",
            "notdiamond.model_key": "openai/gpt-4o",
            "notdiamond.attempt": 1,
            "notdiamond.decision": "retry",
            "notdiamond.wait": 2.0,
            "error.type": "openai.InternalServerError",
        },
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "openai",
            "notdiamond.model_key": "openai/gpt-4o",
            "notdiamond.attempt": 2,
            "notdiamond.decision": "fallback",
            "error.type": "openai.InternalServerError",
        },
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.provider.name": "azure.ai.openai",
            "notdiamond.model_key": "azure/gpt-4o",
            "notdiamond.attempt": 1,
            "notdiamond.decision": "success",
        },
    ]
    assert [a.status.status_code for a in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]


def test_the_attempt_span_is_current_while_its_request_is_sent(
    fake: FakeProvider, spans: InMemorySpanExporter
) -> None:
    """HTTP instrumentation (httpx) nests its spans under the attempt."""
    client = fake.openai()
    notdiamond.init(client, models=["openai/gpt-4o"])
    current: list[trace.Span] = []

    def reply(request: Any) -> Any:
        current.append(trace.get_current_span())
        return ok()(request)

    fake.script("openai/gpt-4o", reply)
    client.chat.completions.create(model="gpt-4o", messages=USER)
    _, attempts = _by_name(spans.get_finished_spans())
    assert current[0].get_span_context().span_id == attempts[0].context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # every context detached


def test_a_failed_call_span_has_the_error_type(
    fake: FakeProvider, spans: InMemorySpanExporter
) -> None:
    client = fake.openai()
    notdiamond.init(client, models=["openai/gpt-4o"], max_retries=1)
    fake.script("openai/gpt-4o", status(400))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="notdiamond", messages=USER)
    call, attempts = _by_name(spans.get_finished_spans())
    assert call.attributes["error.type"] == "openai.BadRequestError"  # type: ignore[index]
    assert call.status.status_code is StatusCode.ERROR
    assert attempts[0].attributes["notdiamond.decision"] == "raise"  # type: ignore[index]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_async_calls_are_traced_and_cancelled_attempts_end(
    fake: FakeProvider, spans: InMemorySpanExporter
) -> None:
    client = fake.async_openai()
    notdiamond.init(
        [client, fake.async_azure()], models=TWO, max_retries=2, backoff=1.0, async_mode=True
    )
    fake.script("openai/gpt-4o", status(503))
    await asyncio.gather(
        *(client.chat.completions.create(model="notdiamond", messages=USER) for _ in range(3))
    )
    finished = spans.get_finished_spans()
    calls = [s for s in finished if s.name == "chat notdiamond"]
    assert len(calls) == 3
    for call in calls:  # each call's attempts are children of that call
        children = [s for s in finished if s.parent and s.parent.span_id == call.context.span_id]
        assert children
        assert children[-1].attributes["notdiamond.decision"] == "success"  # type: ignore[index]
    spans.clear()

    async def never(request: Any) -> Any:
        await asyncio.Event().wait()

    fake.handle_async = never  # type: ignore[method-assign]
    hanging = fake.async_openai()
    notdiamond.init(hanging, models=["openai/gpt-4o"], async_mode=True)
    task = asyncio.create_task(hanging.chat.completions.create(model="gpt-4o", messages=USER))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    call, (attempt,) = _by_name(spans.get_finished_spans())
    assert attempt.attributes["notdiamond.decision"] == "abandoned"  # type: ignore[index]
    assert call.attributes["error.type"] == "asyncio.exceptions.CancelledError"  # type: ignore[index]


def test_no_tracing_without_a_configured_provider(fake: FakeProvider) -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    manager = notdiamond.init(fake.openai(), models=["openai/gpt-4o"])
    assert manager.driver is run_sync
    assert manager.pipeline.strategies == ()
    assert manager.pipeline.observer is None
    assert not manager.pipeline.timed


def test_no_tracing_when_opentelemetry_is_not_installed(
    fake: FakeProvider, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails as if not installed
    manager = notdiamond.init(fake.async_openai(), models=["openai/gpt-4o"], async_mode=True)
    assert manager.driver is run_async
    assert manager.pipeline.strategies == ()


def test_no_tracing_when_the_sdk_is_disabled(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider = TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    manager = notdiamond.init(fake.openai(), models=["openai/gpt-4o"])
    assert manager.driver is run_sync


def test_tracing_keeps_the_users_observer(
    fake: FakeProvider, spans: InMemorySpanExporter, sleeps: SleepRecorder
) -> None:
    events: list[notdiamond.AttemptEvent] = []
    client = fake.openai()
    manager = notdiamond.init(
        client, models=["openai/gpt-4o"], max_retries=2, observer=events.append, sleep=sleeps
    )
    fake.script("openai/gpt-4o", status(500))
    client.chat.completions.create(model="gpt-4o", messages=USER)
    assert [e.decision for e in events] == ["retry", "success"]
    assert manager.observer == events.append
    assert len(spans.get_finished_spans()) == 3


# -- logs ----------------------------------------------------------------------------------------


def test_failure_records_carry_the_call_id_attempt_and_model(
    fake: FakeProvider, sleeps: SleepRecorder, nd_logs: pytest.LogCaptureFixture
) -> None:
    client = fake.openai()
    notdiamond.init([client, fake.azure()], models=TWO, max_retries=2, sleep=sleeps)
    fake.always("openai/gpt-4o", status(500), n=2)
    client.chat.completions.create(model="notdiamond", messages=USER)
    records = [r for r in nd_logs.records if "attempt" in r.getMessage()]
    assert [(r.levelname, r.notdiamond_attempt, r.notdiamond_model) for r in records] == [  # type: ignore[attr-defined]
        ("INFO", 1, "openai/gpt-4o"),
        ("WARNING", 2, "openai/gpt-4o"),
    ]
    call_id = records[0].notdiamond_call_id  # type: ignore[attr-defined]
    assert isinstance(call_id, int)
    assert all(r.notdiamond_call_id == call_id for r in records)  # type: ignore[attr-defined]
    assert records[0].getMessage() == (
        f"call {call_id}: openai/gpt-4o attempt 1/2 failed with InternalServerError (HTTP 500); "
        "retrying in 2.000s"
    )
    for record in nd_logs.records:  # the logger's name is the one prefix
        assert not record.getMessage().startswith("notdiamond")


def test_a_pass_through_call_logs_one_debug_line(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    client = fake.openai()
    notdiamond.init(client, models=["openai/gpt-4o"])
    client.chat.completions.create(model="o3-mini", messages=USER)
    (record,) = nd_logs.records
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        "model 'o3-mini' is not configured: the call passes through to the openai client unchanged"
    )
    assert record.notdiamond_model == "o3-mini"  # type: ignore[attr-defined]
    assert fake.keys() == ["openai/o3-mini"]


@pytest.mark.parametrize(
    ("model", "meant"),
    [
        ("gpt4o", "'gpt-4o'"),  # a configured bare name of this client's provider
        ("openai/gpt4o", "'openai/gpt-4o'"),  # a configured key
        ("azure/gtp-4o-mini", "'azure/gpt-4o-mini'"),  # a swap, in another provider's key
        ("notdiamnd", "'notdiamond'"),
        ("notdaimond", "'notdiamond'"),
    ],
)
def test_a_near_miss_warns_once_per_name(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture, model: str, meant: str
) -> None:
    client = fake.openai()
    notdiamond.init([client, fake.azure()], models=["openai/gpt-4o", "azure/gpt-4o-mini"])
    for _ in range(3):
        client.chat.completions.create(model=model, messages=USER)
    warnings = [r for r in nd_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"model {model!r} is not configured" in warnings[0].getMessage()
    assert f"did you mean {meant}?" in warnings[0].getMessage()
    assert len(fake.keys()) == 3  # still passed through, unchanged (SPEC 4.1)


def test_other_providers_bare_names_and_far_names_do_not_warn(
    fake: FakeProvider, nd_logs: pytest.LogCaptureFixture
) -> None:
    client = fake.openai()
    notdiamond.init([client, fake.azure()], models=["openai/gpt-4o", "azure/gpt-35-turbo"])
    client.chat.completions.create(model="gpt-35-turbo", messages=USER)  # azure's bare name
    client.chat.completions.create(model="gpt-36-turbo", messages=USER)
    client.chat.completions.create(model="o3-mini", messages=USER)
    assert not [r for r in nd_logs.records if r.levelno >= logging.WARNING]


# -- which model served a call -------------------------------------------------------------------


def test_served_models_records_the_key_of_each_call(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client = fake.openai()
    notdiamond.init([client, fake.azure()], models=TWO, max_retries=1, sleep=sleeps)
    fake.script("openai/gpt-4o", status(500))
    with notdiamond.served_models() as served:
        assert served.model is None
        client.chat.completions.create(model="notdiamond", messages=USER)  # falls back
        assert served.model == "azure/gpt-4o"
        client.chat.completions.create(model="gpt-4o", messages=USER)
        with notdiamond.served_models() as inner:
            client.chat.completions.create(model="azure/gpt-4o", messages=USER)
        client.chat.completions.create(model="o3-mini", messages=USER)  # passes through
        fake.script("openai/gpt-4o", status(400))
        fake.script("azure/gpt-4o", status(400))
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="notdiamond", messages=USER)
    assert served.models == ["azure/gpt-4o", "openai/gpt-4o"]
    assert inner.models == ["azure/gpt-4o"]
    client.chat.completions.create(model="notdiamond", messages=USER)  # outside: not recorded
    assert served.model == "openai/gpt-4o"


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_served_models_collects_from_gathered_tasks(fake: FakeProvider) -> None:
    client = fake.async_openai()
    notdiamond.init(
        [client, fake.async_azure()],
        models={"openai/gpt-4o": 0.5, "azure/gpt-4o": 0.5},
        seed=3,
        async_mode=True,
    )
    with notdiamond.served_models() as served:
        await asyncio.gather(
            *(client.chat.completions.create(model="notdiamond", messages=USER) for _ in range(20))
        )
    assert sorted(served.models) == sorted(fake.keys())
    assert len(served.models) == 20


def test_init_and_breaker_records_carry_no_prefix_of_their_own(
    fake: FakeProvider, sleeps: SleepRecorder, nd_logs: pytest.LogCaptureFixture
) -> None:
    """The logger's name is the one ``notdiamond`` prefix (formatters print it)."""
    client = fake.openai()
    notdiamond.init(
        client,
        models=["openai/gpt-4o"],
        async_mode=True,  # disagrees with the client: a warning
        max_retries={"openai/gpt-4o": 1, "azure/gpt-4o": 2},  # another init's key: a warning
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=1),
        sleep=sleeps,
    )
    fake.script("openai/gpt-4o", status(500))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=USER)
    messages = [r.getMessage() for r in nd_logs.records]
    assert any(m.startswith("init: async_mode") for m in messages)
    assert any(m.startswith("init: max_retries has an entry") for m in messages)
    assert any(m.startswith("circuit breaker for openai/gpt-4o opened") for m in messages)
    assert not [m for m in messages if m.startswith("notdiamond")]
