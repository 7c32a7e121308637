"""Runs LiteLLM's Router through the scenarios in real time; prints JSON on stdout.

Executed by path with the interpreter of LiteLLM's own virtualenv (see ``litellm_router.py``),
never imported by this project; none of LiteLLM's code is in this repository.

LiteLLM sends its HTTP requests and sleeps between retries inside its native (Rust) core, so
neither the in-process fake transport nor the virtual clock of the other contenders can reach it.
It runs instead in real time, over real sockets, against a loopback HTTP server that serves the
very same faults: each request's fault comes from ``scenarios.draw_fault`` with the same seed,
provider, logical request index (sent in a header) and attempt number, at the scenario time
elapsed since the run started. Logical requests arrive on the same schedule (open loop, one every
``interarrival`` seconds), concurrently as they would in an application.

    python benchmarks/litellm_runner.py --requests 120 --seed 1 [--scenario outage ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any, Final

# No network at import: LiteLLM otherwise fetches its model cost map from the internet.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # the installed package, in its own virtualenv
from litellm import Router

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.append(str(REPO_ROOT))

from benchmarks import scenarios  # noqa: E402
from benchmarks.fake_provider import MESSAGES, completion_body  # noqa: E402

#: The Router's settings besides its model list: the same 3 attempts per model and 10 s timeout as
#: every contender, with LiteLLM's default cooldowns, or cooldowns tuned for fast failover.
CONFIGS: Final[dict[str, dict[str, Any]]] = {
    "default": {},
    "tuned": {"allowed_fails": 3, "cooldown_time": 10},
}
REQUEST_HEADER: Final = "x-bench-request"
_ERROR_BODY: Final = json.dumps({"error": {"message": "fault", "type": "server_error"}}).encode()
_COMPLETION: Final = completion_body()


class Run:
    """One (scenario, config) run's server-side state: its clock start and per-request counts."""

    def __init__(self, scenario: scenarios.Scenario, workload: scenarios.Workload) -> None:
        self.scenario = scenario
        self.workload = workload
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.attempts: dict[tuple[str, int], int] = {}
        self.outage: dict[int, int] = {}

    def now(self) -> float:
        return time.monotonic() - self.started

    def fault(self, provider: str, request_index: int) -> scenarios.Fault:
        with self.lock:
            attempt = self.attempts.get((provider, request_index), 0)
            self.attempts[(provider, request_index)] = attempt + 1
        fault = scenarios.draw_fault(
            self.scenario, self.workload, provider, request_index, attempt, self.now()
        )
        if fault.outage:
            with self.lock:
                self.outage[request_index] = self.outage.get(request_index, 0) + 1
        return fault

    def http_requests(self, request_index: int) -> int:
        with self.lock:
            return sum(n for (_, i), n in self.attempts.items() if i == request_index)


RUNS: dict[str, Run] = {}


class FaultyHandler(BaseHTTPRequestHandler):
    """``POST /<run>/<provider>/v1/chat/completions``: the run's fault for this request."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # the stdlib's name
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        parts = self.path.strip("/").split("/")
        run = RUNS.get(parts[0]) if parts else None
        provider = parts[1] if len(parts) > 1 else ""
        index = self.headers.get(REQUEST_HEADER)
        if run is None or provider not in ("openai", "azure") or index is None:
            self._send(404, _ERROR_BODY, {})
            return
        fault = run.fault(provider, int(index))
        time.sleep(fault.latency)  # real time: a slow answer outlives the client's timeout
        self._send(fault.status, _COMPLETION if fault.status == 200 else _ERROR_BODY, fault.headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout) and closed the connection
            pass

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        pass


@contextmanager
def loopback_server() -> Iterator[str]:
    """The faulty provider on an ephemeral port of 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FaultyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


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


async def drive(router: Any, run: Run) -> list[dict[str, Any]]:
    """Open loop: logical request i starts at ``i * interarrival`` seconds after the run's start."""

    async def one(i: int) -> dict[str, Any]:
        arrival = i * run.workload.interarrival
        await asyncio.sleep(max(0.0, arrival - run.now()))
        started = run.now()
        error: str | None = None
        try:
            await router.acompletion(
                model="primary", messages=MESSAGES, extra_headers={REQUEST_HEADER: str(i)}
            )
        except Exception as exc:
            error = type(exc).__name__
        return {
            "ok": error is None,
            "latency": run.now() - started,
            "http_requests": run.http_requests(i),
            "waited": float("nan"),  # LiteLLM's sleeps happen in its native core, unseen here
            "error": error,
            "outage_requests": run.outage.get(i, 0),
        }

    return list(await asyncio.gather(*(one(i) for i in range(run.workload.requests))))


async def run_all(
    workload: scenarios.Workload, names: list[str], configs: list[str], base: str
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every (config, scenario) run at once, each with its own Router and its own clock start."""
    jobs = []
    for config in configs:
        for name in names:
            run_id = f"{config}-{name}"
            router = build_router(base, run_id, CONFIGS[config])
            RUNS[run_id] = run = Run(scenarios.SCENARIOS[name], workload)
            jobs.append((config, name, drive(router, run)))
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
    parser.add_argument("--scenario", action="append", choices=list(scenarios.SCENARIOS))
    parser.add_argument("--config", action="append", choices=list(CONFIGS))
    args = parser.parse_args(argv)
    workload = scenarios.Workload(args.requests, args.interarrival, args.seed)
    litellm.suppress_debug_info = True
    started = time.monotonic()
    with loopback_server() as base:
        results = asyncio.run(
            run_all(
                workload,
                args.scenario or list(scenarios.SCENARIOS),
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
