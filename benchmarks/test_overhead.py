"""Success-path overhead of a patched client over the same client unpatched (pytest-benchmark).

Two measurements per mode:

* ``end_to_end`` (paired): ``chat.completions.create`` through the in-process fake transport,
  unpatched vs patched by ``notdiamond.init(..., models=["openai/gpt-4o"])`` and called with
  ``model="notdiamond"`` or ``model="gpt-4o"``. This is what a user pays, but it is the difference of
  two ~1-2 ms timings. So the three variants run interleaved, a batch of each per round in rotating
  order, so that a change of machine load cancels; the overhead is the median of the paired
  per-call differences, with a bootstrap 95% interval.
* ``hook``: the library's own cost, isolated. ``client.request(cast_to, options)`` (where every
  ``create`` ends) on a client whose SDK ``request`` is a stub returning a prebuilt completion, so
  no HTTP, parsing or request building is timed. Unpatched, that is the bare stub (~0.1 µs);
  patched, it is the library's whole success path: routing, model choice, the attempt's arguments,
  writing them into the request options, and the call into the SDK. A fourth variant,
  ``reference``, is a minimal hand-flattened hook without the library: the yardstick that the
  baseline comparison divides by, so that a slower (or busier) machine is not read as a regression.
  Two more, ``deadline`` and ``breaker``, are the defaults plus ``deadline=25.0`` or
  ``circuit_breaker=True`` (skipped on a build without a breaker): what switching a strategy on
  costs on the success path.

Async calls run on one reused event loop, in batches inside one ``run_until_complete``; the report
divides by ``calls_per_round``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import numpy as np
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
#: Paired end-to-end rounds (``BENCH_PAIRED_ROUNDS``), calls per variant per round, warm-up rounds.
PAIRED_ROUNDS: Final = int(os.environ.get("BENCH_PAIRED_ROUNDS", "400"))
PAIRED_BATCH: Final = 5
PAIRED_WARMUP: Final = 5
COMPLETION: Final = ChatCompletion.model_validate_json(fake_provider.completion_body())
VARIANTS: Final = ("unpatched", "notdiamond", "gpt-4o")
#: Strategies switched on over the defaults (``model="notdiamond"``): their success-path cost.
STRATEGY_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "deadline": {"deadline": 25.0},
    "breaker": {"circuit_breaker": True},
}
HOOK_VARIANTS: Final = (*VARIANTS, "reference", *STRATEGY_OPTIONS)


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


def _reference_prepare(options: Any) -> None:
    """The least a request hook must do on the success path, written flat: recognise a chat
    completion, pick its model, write the attempt's arguments into the request options."""
    if options.url != "/chat/completions" or options.method != "post":
        return
    body = options.json_data
    if REFERENCE_ROUTES.get(body.get("model")) is None:
        return
    arguments = dict(body)
    arguments["model"] = "gpt-4o"
    fields = {"json_data": arguments, "timeout": 60.0, "max_retries": 0}
    options.__dict__.update(fields)
    options.__pydantic_fields_set__.update(fields)


REFERENCE_ROUTES: Final = {"notdiamond": "openai/gpt-4o", "gpt-4o": "openai/gpt-4o"}


class ReferenceHookOpenAI(StubbedOpenAI):
    """A minimal hand-flattened hook (no notdiamond): the yardstick the library's cost is divided
    by, so that a comparison with the baseline is not a comparison of two machine loads."""

    def request(
        self, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        _reference_prepare(options)
        try:
            return super().request(cast_to, options, stream=stream, stream_cls=stream_cls)
        except Exception:  # where a real hook would decide on a retry
            raise


class ReferenceHookAsyncOpenAI(StubbedAsyncOpenAI):
    async def request(
        self, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        _reference_prepare(options)
        try:
            return await super().request(cast_to, options, stream=stream, stream_cls=stream_cls)
        except Exception:
            raise


@contextlib.contextmanager
def _managed(client: Any, variant: str) -> Iterator[str]:
    """Patch ``client`` unless ``variant`` is ``unpatched``; yield the ``model`` argument to send."""
    if variant == "unpatched":
        yield "gpt-4o"
        return
    if variant == "reference":
        assert isinstance(client, ReferenceHookOpenAI | ReferenceHookAsyncOpenAI)
        yield "notdiamond"
        return
    options = STRATEGY_OPTIONS.get(variant, {})
    if "circuit_breaker" in options and not hasattr(notdiamond, "CircuitBreaker"):
        pytest.skip("this build has no circuit breaker (notdiamond.CircuitBreaker)")
    with notdiamond.init(
        client,
        models=["openai/gpt-4o"],
        async_mode=isinstance(client, openai.AsyncOpenAI),
        **options,
    ):
        assert type(client) not in (openai.OpenAI, openai.AsyncOpenAI)  # patched: a subclass
        yield "notdiamond" if variant in STRATEGY_OPTIONS else variant


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


# -- end to end, paired: the three variants interleaved, so that load drift cancels ----------


def _timed_sync_batch(create: Callable[..., Any], model: str, stream: bool) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for _ in range(PAIRED_BATCH):
            if stream:
                for _chunk in create(model=model, messages=MESSAGES, stream=True):
                    pass
            else:
                create(model=model, messages=MESSAGES)
        return time.perf_counter() - started

    return run


def _timed_async_batch(
    loop: asyncio.AbstractEventLoop, create: Callable[..., Any], model: str
) -> Callable[[], float]:
    async def batch() -> float:
        started = time.perf_counter()
        for _ in range(PAIRED_BATCH):
            await create(model=model, messages=MESSAGES)
        return time.perf_counter() - started

    return lambda: loop.run_until_complete(batch())


@pytest.mark.benchmark(group="end_to_end paired")
@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_paired(benchmark: Any, mode: str, loop: asyncio.AbstractEventLoop) -> None:
    """Per round: a batch of each variant in rotating order; the overhead is the median over
    rounds of (patched batch - unpatched batch) / batch size, with a bootstrap 95% interval."""
    if mode == "async":
        plain: Any = fake_provider.async_openai_client()
        patched: Any = fake_provider.async_openai_client()
    else:
        plain, patched = fake_provider.openai_client(), fake_provider.openai_client()
    with _managed(patched, "notdiamond"):
        if mode == "async":
            batches = {
                "unpatched": _timed_async_batch(loop, plain.chat.completions.create, "gpt-4o"),
                "notdiamond": _timed_async_batch(
                    loop, patched.chat.completions.create, "notdiamond"
                ),
                "gpt-4o": _timed_async_batch(loop, patched.chat.completions.create, "gpt-4o"),
            }
        else:
            stream = mode == "stream"
            batches = {
                "unpatched": _timed_sync_batch(plain.chat.completions.create, "gpt-4o", stream),
                "notdiamond": _timed_sync_batch(
                    patched.chat.completions.create, "notdiamond", stream
                ),
                "gpt-4o": _timed_sync_batch(patched.chat.completions.create, "gpt-4o", stream),
            }
        order = list(batches)
        per_call: dict[str, list[float]] = {v: [] for v in order}

        def one_round() -> None:
            order.append(order.pop(0))  # rotate: no variant always runs first
            for variant in order:
                per_call[variant].append(batches[variant]() / PAIRED_BATCH)

        for _ in range(PAIRED_WARMUP):
            one_round()
        for times in per_call.values():
            times.clear()
        benchmark.pedantic(one_round, rounds=PAIRED_ROUNDS)

        base = np.array(per_call["unpatched"])
        rng = np.random.default_rng(0)
        summary: dict[str, Any] = {"unpatched_median_us": float(np.median(base)) * 1e6}
        for variant in ("notdiamond", "gpt-4o"):
            diff = (np.array(per_call[variant]) - base) * 1e6
            boot = np.median(rng.choice(diff, size=(1000, diff.size)), axis=1)
            summary[variant] = {
                "median_us": float(np.median(diff)),
                "ci95_us": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
                "patched_median_us": float(np.median(per_call[variant])) * 1e6,
            }
        benchmark.extra_info.update(
            kind="paired", mode=mode, rounds=PAIRED_ROUNDS, batch=PAIRED_BATCH, **summary
        )
    if mode == "async":
        loop.run_until_complete(plain.close())
        loop.run_until_complete(patched.close())


# -- the library's own cost: the request hook, with the SDK's request stubbed on both sides -----


def _options(model: str, stream: bool = False) -> Any:
    """The request options ``create`` would hand to ``client.request`` (built outside the timing)."""
    body: dict[str, Any] = {"model": model, "messages": MESSAGES}
    if stream:
        body["stream"] = True
    return FinalRequestOptions.construct(method="post", url="/chat/completions", json_data=body)


def _bench_sync_hook(benchmark: Any, variant: str, stream: bool) -> None:
    """One sync ``client.request`` per round, for a plain or a streamed completion."""
    cls = ReferenceHookOpenAI if variant == "reference" else StubbedOpenAI
    client = cls(api_key=fake_provider.API_KEY)
    with _managed(client, variant) as model:
        _tag(benchmark, "hook", "stream" if stream else "sync", variant)
        result = benchmark.pedantic(
            client.request,
            setup=lambda: (
                (ChatCompletion, _options(model, stream=stream)),
                {"stream": True} if stream else {},
            ),
            rounds=HOOK_ROUNDS,
            warmup_rounds=HOOK_ROUNDS // 10,
        )
        assert result is COMPLETION


@pytest.mark.benchmark(group="hook sync")
@pytest.mark.parametrize("variant", HOOK_VARIANTS)
def test_hook_sync(benchmark: Any, variant: str) -> None:
    _bench_sync_hook(benchmark, variant, stream=False)


@pytest.mark.benchmark(group="hook stream")
@pytest.mark.parametrize("variant", HOOK_VARIANTS)
def test_hook_stream(benchmark: Any, variant: str) -> None:
    _bench_sync_hook(benchmark, variant, stream=True)


@pytest.mark.benchmark(group="hook async")
@pytest.mark.parametrize("variant", HOOK_VARIANTS)
def test_hook_async(benchmark: Any, variant: str, loop: asyncio.AbstractEventLoop) -> None:
    cls = ReferenceHookAsyncOpenAI if variant == "reference" else StubbedAsyncOpenAI
    client = cls(api_key=fake_provider.API_KEY)

    async def batch(options: list[Any]) -> object:
        result = None
        for each in options:
            result = await client.request(ChatCompletion, each)
        return result

    with _managed(client, variant) as model:
        _tag(benchmark, "hook", "async", variant, ASYNC_BATCH)
        result = benchmark.pedantic(
            lambda options: loop.run_until_complete(batch(options)),
            setup=lambda: (([_options(model) for _ in range(ASYNC_BATCH)],), {}),
            rounds=HOOK_ROUNDS // ASYNC_BATCH,
            warmup_rounds=HOOK_ROUNDS // ASYNC_BATCH // 10,
        )
        assert result is COMPLETION
