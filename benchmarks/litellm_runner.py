"""Runs LiteLLM's Router through the scenarios in real time; prints JSON on stdout.

Executed by path with the interpreter of LiteLLM's own virtualenv (see ``litellm_router.py``),
never imported by this project; none of LiteLLM's code is in this repository.

LiteLLM sends its HTTP requests and sleeps between retries inside its native (Rust) core, so
neither the in-process fake transport nor the virtual clock of the other contenders can reach it.
It runs instead in real time, over real sockets, against the loopback server of ``loopback.py``,
which serves the very same fault draws. Each (configuration, scenario) run has its own Router and
its own path on one server; all runs go at once.

    python benchmarks/litellm_runner.py --requests 120 --seed 1 [--scenario outage ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Final

# No network at import: LiteLLM otherwise fetches its model cost map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # the installed package, in its own virtualenv
from litellm import Router

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO_ROOT))

from benchmarks import loopback, scenarios  # noqa: E402
from benchmarks.fake_provider import MESSAGES  # noqa: E402

#: The Router's settings besides its model list: the same 3 attempts per model and 10 s timeout as
#: every contender, with LiteLLM's default cooldowns, or cooldowns tuned for fast failover.
CONFIGS: Final[dict[str, dict[str, Any]]] = {
    "default": {},
    "tuned": {"allowed_fails": 3, "cooldown_time": 10},
}


def build_router(base: str, run_id: str, config: dict[str, Any]) -> Any:
    """Two model groups, the primary falling back to the secondary, both OpenAI-compatible
    endpoints reached with LiteLLM's ``openai/`` prefix and ``api_base``."""

    def deployment(name: str, provider: str) -> dict[str, Any]:
        return {
            "model_name": name,
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_base": f"{base}/{run_id}/{provider}/v1",
                "api_key": "sk-fake",
            },
        }

    return Router(
        model_list=[deployment("primary", "openai"), deployment("secondary", "azure")],
        fallbacks=[{"primary": ["secondary"]}],
        num_retries=scenarios.MAX_RETRIES - 1,  # 3 attempts per model, as the others
        timeout=scenarios.TIMEOUT,
        **config,
    )


def completion(router: Any, stream: bool) -> Callable[[int], Awaitable[object]]:
    """One logical call; a streamed one returns at its first chunk."""

    async def call(i: int) -> object:
        headers = {loopback.REQUEST_HEADER: str(i)}
        if not stream:
            return await router.acompletion(
                model="primary", messages=MESSAGES, extra_headers=headers
            )
        chunks = await router.acompletion(
            model="primary", messages=MESSAGES, extra_headers=headers, stream=True
        )
        async for chunk in chunks:
            return chunk
        raise RuntimeError("the stream ended before its first chunk")

    return call


async def run_all(
    workload: scenarios.Workload, names: list[str], configs: list[str], base: str
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every (config, scenario) run at once, each with its own Router and its own clock start."""
    jobs = []
    for config in configs:
        for name in names:
            run_id = f"{config}-{name}"
            router = build_router(base, run_id, CONFIGS[config])
            scenario = scenarios.ALL_SCENARIOS[name]
            loopback.RUNS[run_id] = run = loopback.Run(scenario, workload)
            jobs.append((config, name, loopback.drive(completion(router, scenario.stream), run)))
    done = await asyncio.gather(*(job for _, _, job in jobs))
    results: dict[str, dict[str, list[dict[str, Any]]]] = {c: {} for c in configs}
    for (config, name, _), records in zip(jobs, done, strict=True):
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
    litellm.suppress_debug_info = True
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
            "litellm": metadata.version("litellm"),
            "openai": metadata.version("openai"),
            "python": sys.version.split()[0],
            "wall_seconds": time.monotonic() - started,
            "configs": CONFIGS,
            "results": results,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
