"""A loopback HTTP server serving the scenarios' faults in real time, and an open-loop driver.

For contenders that cannot run in the virtual time of ``scenarios.run_scenario`` (LiteLLM sends its
requests and sleeps in its native core): each request's fault comes from ``scenarios.draw_fault``
with the same seed, provider, logical request index (sent in the ``x-bench-request`` header) and
attempt number as in virtual time, at the scenario time elapsed since the run started; a response
is delayed by its latency in real seconds, so a slow one outlives the client's timeout. Logical
requests arrive on the same schedule (one every ``interarrival`` seconds), concurrently, as in an
application. Requests are routed by path: ``/<run>/<provider>/...`` with provider ``openai`` or
``azure``.

Stdlib and ``benchmarks.scenarios`` only: runners in other virtualenvs import it.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from benchmarks import scenarios
from benchmarks.fake_provider import completion_body, stream_body

REQUEST_HEADER: Final = "x-bench-request"
#: The request index of the warm-up call: answered at once, counted nowhere.
WARM_UP: Final = -1
_ERROR_BODY: Final = json.dumps({"error": {"message": "fault", "type": "server_error"}}).encode()
_COMPLETION: Final = completion_body()
_STREAM: Final = stream_body()


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
        if request_index == WARM_UP:
            return scenarios.Fault(200, 0.0)
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


#: The runs the server serves, by the first segment of the path.
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
        if fault.status == 200 and run.scenario.stream:
            self._stream(fault.latency)
            return
        time.sleep(fault.latency)  # real time: a slow answer outlives the client's timeout
        self._send(fault.status, _COMPLETION if fault.status == 200 else _ERROR_BODY, fault.headers)

    def _stream(self, first_chunk_after: float) -> None:
        """Headers at once, the first SSE chunk after ``first_chunk_after`` s, then the rest."""
        self.close_connection = True  # the body ends when the connection does
        try:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.flush()
            time.sleep(first_chunk_after)
            self.wfile.write(_STREAM)
            self.wfile.flush()
        except OSError:  # the client gave up waiting for the first chunk
            pass

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


def drive(call: Callable[[int], Awaitable[object]], run: Run) -> Awaitable[list[dict[str, Any]]]:
    """Open loop: logical request i starts ``i * interarrival`` s after the run's start and is
    ``call(i)`` (which must send header ``x-bench-request: i``, and in a streamed scenario return
    once the first chunk is in); one record dict per request."""

    async def one(i: int) -> dict[str, Any]:
        await asyncio.sleep(max(0.0, i * run.workload.interarrival - run.now()))
        started = run.now()
        error: str | None = None
        try:
            await call(i)
        except Exception as exc:
            error = type(exc).__name__
        return {
            "ok": error is None,
            "latency": run.now() - started,
            "http_requests": run.http_requests(i),
            "waited": math.nan,  # sleeps inside the contender are not observed here
            "error": error,
            "outage_requests": run.outage.get(i, 0),
        }

    async def everything() -> list[dict[str, Any]]:
        # One call before the clock starts, as in a running application: clients, connection
        # pools and lazy imports are set up outside the measurement.
        await call(WARM_UP)
        run.started = time.monotonic()
        return list(await asyncio.gather(*(one(i) for i in range(run.workload.requests))))

    return everything()
