"""Success-path overhead of a patched client over the same client unpatched (pytest-benchmark).

Two measurements per mode:

* ``end_to_end``: ``chat.completions.create`` through the in-process fake transport, unpatched vs
  patched by ``notdiamond.init(..., models=["openai/gpt-4o"])`` and called with
  ``model="notdiamond"`` or ``model="gpt-4o"``. This is what a user pays, but it is the difference of
  two ~500 µs timings, so its noise is of the order of the overhead itself.
* ``hook``: the library's own cost, isolated. ``client.request(cast_to, options)`` (where every
  ``create`` ends) on a client whose SDK ``request`` is a stub returning a prebuilt completion, so
  no HTTP, parsing or request building is timed. Unpatched, that is the bare stub (~0.1 µs);
  patched, it is the library's whole success path: routing, model choice, the attempt's arguments,
  writing them into the request options, and the call into the SDK.

Async calls run in batches of ``ASYNC_BATCH`` on one reused event loop (one ``run_until_complete``
per round); the report divides by ``calls_per_round``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any, Final

import openai
import pytest
from openai._models import FinalRequestOptions
from openai.types.chat import ChatCompletion

import notdiamond
from benchmarks import fake_provider
from benchmarks.fake_provider import MESSAGES

ASYNC_BATCH: Final = 20
#: Rounds of the hook benchmarks (one call each; ``BENCH_HOOK_ROUNDS`` overrides, for --quick).
HOOK_ROUNDS: Final = int(os.environ.get("BENCH_HOOK_ROUNDS", "20000"))
COMPLETION: Final = ChatCompletion.model_validate_json(fake_provider.completion_body())
VARIANTS: Final = ("unpatched", "notdiamond", "gpt-4o")


class StubbedOpenAI(openai.OpenAI):
    """``OpenAI`` whose ``request`` skips HTTP: the SDK's ``create`` still builds the request."""

    def request(
        self, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        return COMPLETION


class StubbedAsyncOpenAI(openai.AsyncOpenAI):
    async def request(
        self, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        return COMPLETION


def _managed(client: Any, variant: str) -> Iterator[str]:
    """Patch ``client`` unless ``variant`` is ``unpatched``; yield the ``model`` argument to send."""
    if variant == "unpatched":
        yield "gpt-4o"
        return
    with notdiamond.init(
        client, models=["openai/gpt-4o"], async_mode=isinstance(client, openai.AsyncOpenAI)
    ):
        assert type(client) not in (openai.OpenAI, openai.AsyncOpenAI)  # patched: a subclass
        yield variant


def _tag(benchmark: Any, measure: str, mode: str, variant: str, calls_per_round: int = 1) -> None:
    benchmark.extra_info.update(
        kind="overhead",
        measure=measure,
        mode=mode,
        variant=variant,
        calls_per_round=calls_per_round,
    )


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def _run_async_batch(
    loop: asyncio.AbstractEventLoop, create: Callable[..., Any], model: str
) -> Callable[[], object]:
    async def batch() -> object:
        result = None
        for _ in range(ASYNC_BATCH):
            result = await create(model=model, messages=MESSAGES)
        return result

    return lambda: loop.run_until_complete(batch())


# -- end to end, through the fake transport ---------------------------------------------------


@pytest.mark.benchmark(group="end_to_end sync")
@pytest.mark.parametrize("variant", VARIANTS)
def test_sync(benchmark: Any, variant: str) -> None:
    client = fake_provider.openai_client()
    for model in _managed(client, variant):
        _tag(benchmark, "end_to_end", "sync", variant)
        result = benchmark(client.chat.completions.create, model=model, messages=MESSAGES)
        assert result.choices[0].message.content == "ok"


@pytest.mark.benchmark(group="end_to_end async")
@pytest.mark.parametrize("variant", VARIANTS)
def test_async(benchmark: Any, variant: str, loop: asyncio.AbstractEventLoop) -> None:
    client = fake_provider.async_openai_client()
    for model in _managed(client, variant):
        _tag(benchmark, "end_to_end", "async", variant, ASYNC_BATCH)
        result: Any = benchmark(_run_async_batch(loop, client.chat.completions.create, model))
        assert result.choices[0].message.content == "ok"
    loop.run_until_complete(client.close())


@pytest.mark.benchmark(group="end_to_end stream")
@pytest.mark.parametrize("variant", VARIANTS)
def test_stream(benchmark: Any, variant: str) -> None:
    client = fake_provider.openai_client()
    for model in _managed(client, variant):
        _tag(benchmark, "end_to_end", "stream", variant)

        def stream_all(model: str = model) -> int:
            stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            return sum(1 for _ in stream)

        assert benchmark(stream_all) == 3


# -- the library's own cost: the request hook, with the SDK's request stubbed on both sides -----


def _options(model: str, stream: bool = False) -> Any:
    """The request options ``create`` would hand to ``client.request`` (built outside the timing)."""
    body: dict[str, Any] = {"model": model, "messages": MESSAGES}
    if stream:
        body["stream"] = True
    return FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)


@pytest.mark.benchmark(group="hook sync")
@pytest.mark.parametrize("variant", VARIANTS)
def test_hook_sync(benchmark: Any, variant: str) -> None:
    client = StubbedOpenAI(api_key=fake_provider.API_KEY)
    for model in _managed(client, variant):
        _tag(benchmark, "hook", "sync", variant)
        result = benchmark.pedantic(
            client.request,
            setup=lambda: ((ChatCompletion, _options(model)), {}),  # noqa: B023
            rounds=HOOK_ROUNDS,
            warmup_rounds=HOOK_ROUNDS // 10,
        )
        assert result is COMPLETION


@pytest.mark.benchmark(group="hook stream")
@pytest.mark.parametrize("variant", VARIANTS)
def test_hook_stream(benchmark: Any, variant: str) -> None:
    client = StubbedOpenAI(api_key=fake_provider.API_KEY)
    for model in _managed(client, variant):
        _tag(benchmark, "hook", "stream", variant)
        result = benchmark.pedantic(
            client.request,
            setup=lambda: ((ChatCompletion, _options(model, stream=True)), {"stream": True}),  # noqa: B023
            rounds=HOOK_ROUNDS,
            warmup_rounds=HOOK_ROUNDS // 10,
        )
        assert result is COMPLETION


@pytest.mark.benchmark(group="hook async")
@pytest.mark.parametrize("variant", VARIANTS)
def test_hook_async(benchmark: Any, variant: str, loop: asyncio.AbstractEventLoop) -> None:
    client = StubbedAsyncOpenAI(api_key=fake_provider.API_KEY)

    async def batch(options: list[Any]) -> object:
        result = None
        for each in options:
            result = await client.request(ChatCompletion, each)
        return result

    for model in _managed(client, variant):
        _tag(benchmark, "hook", "async", variant, ASYNC_BATCH)
        result = benchmark.pedantic(
            lambda options: loop.run_until_complete(batch(options)),
            setup=lambda: (([_options(model) for _ in range(ASYNC_BATCH)],), {}),  # noqa: B023
            rounds=HOOK_ROUNDS // ASYNC_BATCH,
            warmup_rounds=HOOK_ROUNDS // ASYNC_BATCH // 10,
        )
        assert result is COMPLETION
