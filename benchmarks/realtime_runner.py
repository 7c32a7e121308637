"""This library in real time over loopback sockets, the conditions LiteLLM runs under; prints JSON.

``python -m benchmarks.realtime_runner --requests 200 --seed 1``, from the repository root, in this
project's environment, at the same time as LiteLLM's runner (see ``litellm_router.py``): the same
loopback fault server (``loopback.py``), the same open-loop schedule, the same machine load. Async
clients (``AsyncOpenAI``, ``AsyncAzureOpenAI``) with SDK defaults and the 10 s timeout: the plain
SDK (primary only), and patched by ``notdiamond.init`` with the settings of the virtual-time rows:
the defaults, and the recommended options (on the real clock here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import openai

import notdiamond
from benchmarks import contenders, loopback, scenarios
from benchmarks.fake_provider import API_KEY, AZURE_API_VERSION, MESSAGES

#: ``None``: the plain SDK (not patched, primary only); otherwise ``notdiamond.init``'s arguments
#: beyond clients and models (the same as the virtual-time rows').
CONFIGS: Final[dict[str, Callable[[], dict[str, Any] | None]]] = {
    "plain": lambda: None,
    "default": contenders.default_options,
    "recommended": contenders.recommended_options,
    "hedged": contenders.hedged_options,
}


def build(base: str, run_id: str, options: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    primary = openai.AsyncOpenAI(
        api_key=API_KEY, base_url=f"{base}/{run_id}/openai/v1", timeout=scenarios.TIMEOUT
    )
    secondary = openai.AsyncAzureOpenAI(
        api_key=API_KEY,
        api_version=AZURE_API_VERSION,
        azure_endpoint=f"{base}/{run_id}/azure",
        timeout=scenarios.TIMEOUT,
    )
    if options is None:
        return primary, secondary, None
    manager = notdiamond.init(
        [primary, secondary],
        models=scenarios.MODELS,
        async_mode=True,
        **options,
    )
    return primary, secondary, manager


def completion(primary: Any, model: str, stream: bool) -> Callable[[int], Awaitable[object]]:
    """One logical call; a streamed one returns at its first chunk (and closes the stream)."""

    async def call(i: int) -> object:
        headers = {loopback.REQUEST_HEADER: str(i)}
        if not stream:
            return await primary.chat.completions.create(
                model=model, messages=MESSAGES, extra_headers=headers
            )
        chunks = await primary.chat.completions.create(
            model=model, messages=MESSAGES, extra_headers=headers, stream=True
        )
        try:
            async for chunk in chunks:
                return chunk
            raise RuntimeError("the stream ended before its first chunk")
        finally:
            await chunks.close()

    return call


async def run_all(
    workload: scenarios.Workload, names: list[str], configs: list[str], base: str
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    jobs = []
    managers = []
    for config in configs:
        for name in names:
            run_id = f"nd-{config}-{name}"
            options = CONFIGS[config]()
            if options is None and config != "plain":
                continue  # this build lacks the option
            primary, _, manager = build(base, run_id, options)
            if manager is not None:
                managers.append(manager)
            scenario = scenarios.ALL_SCENARIOS[name]
            loopback.RUNS[run_id] = run = loopback.Run(scenario, workload)
            model = "gpt-4o" if options is None else "notdiamond"
            call = completion(primary, model, scenario.stream)
            jobs.append((config, name, loopback.drive(call, run)))
    try:
        done = await asyncio.gather(*(job for _, _, job in jobs))
    finally:
        for manager in managers:
            manager.close()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for (config, name, _), records in zip(jobs, done, strict=True):
        results.setdefault(config, {})
        results[config][name] = records
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--interarrival", type=float, default=scenarios.Workload.interarrival)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scenario", action="append", choices=list(scenarios.ALL_SCENARIOS))
    parser.add_argument("--config", action="append", choices=list(CONFIGS))
    args = parser.parse_args(argv)
    workload = scenarios.Workload(args.requests, args.interarrival, args.seed)
    logging.disable(logging.CRITICAL)  # retry warnings would flood stderr
    started = time.monotonic()
    with loopback.loopback_server() as base:
        results = asyncio.run(
            run_all(
                workload,
                args.scenario or list(scenarios.ALL_SCENARIOS),
                args.config or list(CONFIGS),
                base,
            )
        )
    json.dump(
        {
            "notdiamond": notdiamond.__version__,
            "openai": openai.__version__,
            "python": sys.version.split()[0],
            "wall_seconds": time.monotonic() - started,
            "options": {c: repr(CONFIGS[c]()) for c in CONFIGS},
            "results": results,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
