"""The plain-SDK baseline: the same scenario's faults met by a client without ``notdiamond``.

The report's latency plot compares what the library did to its callers with what the plain OpenAI
SDK does on the same fault model: one client of the configuration's main model (its first model,
or its heaviest weight), with the SDK's own retries (``max_retries`` = the SDK's default, its own
backoff and ``Retry-After`` handling) and the scenario's timeout for that model, as an application
without the library would configure it. The requests arrive on the scenario's schedule and are
streamed as often; the fake provider draws from the same seed. Everything runs on virtual time
(sync: a :class:`VirtualClock`, the SDK's ``time.sleep`` pointed at it; async: the virtual-time
event loop), so a baseline of a thousand calls takes well under a second. Server scenarios are
run in process (their fault model is the same; only the sockets differ).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .checks.base import RunView
from .clock import run_virtual
from .drivers import fake_async_clients, fake_sync_clients, sdk_sleep_on, stream_draws
from .scenario import Scenario
from .trace import CALLER_MESSAGES, REQUEST_HEADER, Trace, current_request

#: Calls of the baseline (and of the library's run they are compared with): the first ones.
MAX_CALLS = 1000


@dataclass(frozen=True)
class Call:
    """How one call ended for its caller: seconds from its start to its outcome, and whether the
    outcome was a complete answer."""

    seconds: float
    ok: bool


def main_model(scenario: Scenario) -> str:
    """The model a plain application calls: the first configured, or the heaviest weight."""
    if scenario.weights is not None:
        return scenario.order[max(range(len(scenario.order)), key=lambda i: scenario.weights[i])]  # type: ignore[index]
    return scenario.first_key() or scenario.order[0]


def sdk_default_retries() -> int:
    import openai

    return int(openai.DEFAULT_MAX_RETRIES)


@contextlib.contextmanager
def _seeded_global_random(seed: int) -> Iterator[None]:
    """The SDK's retry jitter draws from the global ``random``: seed it for the run, then put its
    state back."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _client(clients: list[Any], key: str, timeout: float) -> Any:
    provider = key.split("/", 1)[0]
    for c in clients:
        if ("Azure" in type(c).__name__) == (provider == "azure"):
            return c.with_options(timeout=timeout, max_retries=sdk_default_retries())
    raise LookupError(f"no client for {key}")


def run_plain(scenario: Scenario, n: int, seed: int, trace: Trace | None = None) -> list[Call]:
    """``n`` calls of the scenario through the plain SDK (see the module docstring); what the
    fake provider answered goes to ``trace`` when one is given."""
    key = main_model(scenario)
    trace = Trace() if trace is None else trace
    with _seeded_global_random(seed):
        if scenario.mode == "async":
            return _run_async(scenario, key, n, seed, trace)
        return _run_sync(scenario, key, n, seed, trace)


def _run_sync(scenario: Scenario, key: str, n: int, seed: int, trace: Trace) -> list[Call]:
    vc, clients = fake_sync_clients(scenario, seed, trace)
    client = _client(clients, key, scenario.timeouts[key])
    model = key.split("/", 1)[1]
    stream_rng = stream_draws(seed)
    calls = []
    with sdk_sleep_on(vc):
        for i in range(n):
            vc.advance_to(i * scenario.traffic.interval)
            current_request.set(i)
            stream = scenario.traffic.stream > 0 and stream_rng.random() < scenario.traffic.stream
            start = vc.now
            ok = True
            try:
                if stream:
                    for _ in client.chat.completions.create(
                        model=model,
                        messages=CALLER_MESSAGES,
                        stream=True,
                        extra_headers={REQUEST_HEADER: str(i)},
                    ):
                        pass
                else:
                    client.chat.completions.create(
                        model=model,
                        messages=CALLER_MESSAGES,
                        extra_headers={REQUEST_HEADER: str(i)},
                    )
            except Exception:
                ok = False
            calls.append(Call(vc.now - start, ok))
    for c in clients:
        c.close()
    return calls


def _run_async(scenario: Scenario, key: str, n: int, seed: int, trace: Trace) -> list[Call]:
    model = key.split("/", 1)[1]

    async def main() -> list[Call]:
        loop = asyncio.get_running_loop()
        clients = fake_async_clients(scenario, seed, trace)
        client = _client(clients, key, scenario.timeouts[key])
        stream_rng = stream_draws(seed)

        async def one(i: int, stream: bool) -> Call:
            current_request.set(i)
            start = loop.time()
            headers = {REQUEST_HEADER: str(i)}
            try:
                if stream:
                    chunks = await client.chat.completions.create(
                        model=model, messages=CALLER_MESSAGES, stream=True, extra_headers=headers
                    )
                    async for _ in chunks:
                        pass
                else:
                    await client.chat.completions.create(
                        model=model, messages=CALLER_MESSAGES, extra_headers=headers
                    )
            except Exception:
                return Call(loop.time() - start, False)
            return Call(loop.time() - start, True)

        tasks = []
        for i in range(n):
            delay = i * scenario.traffic.interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stream = scenario.traffic.stream > 0 and stream_rng.random() < scenario.traffic.stream
            tasks.append(asyncio.create_task(one(i, stream)))
        calls = list(await asyncio.gather(*tasks))
        for c in clients:
            await c.close()
        return calls

    calls, _ = run_virtual(main())
    return calls


def library_calls(view: RunView, n: int) -> list[Call]:
    """The first ``n`` calls of a run with the library, as their callers saw them (the at-a-glance
    table's definition: from the call's first HTTP request to its outcome; a call refused before
    any request took no time)."""
    calls = []
    for r in sorted(view.requests)[:n]:
        ends, recs = view.endings.get(r, []), view.http.get(r, [])
        if not ends:
            continue
        seconds = ends[0].at - recs[0].start if recs else 0.0
        calls.append(Call(max(0.0, seconds), ends[0].kind == "response"))
    return calls


def compare(view: RunView, seed: int) -> dict[str, Any]:
    """The plot's extract: the library's first calls and as many plain-SDK calls on the same
    faults (``[seconds, ok]`` pairs), with what the baseline was."""
    scenario = view.scenario
    n = min(len(view.requests), MAX_CALLS)
    key = main_model(scenario)
    return {
        "calls": n,
        "notdiamond": [[c.seconds, c.ok] for c in library_calls(view, n)],
        "plain_sdk": [[c.seconds, c.ok] for c in run_plain(scenario, n, seed)],
        "plain_model": key,
        "plain_max_retries": sdk_default_retries(),
        "plain_timeout": scenario.timeouts[key],
    }
