"""A fake OpenAI-compatible HTTP server on 127.0.0.1: real sockets, SSE streaming, the same fault
model as the in-process transport, with every delay scaled down by ``time_scale``.

It listens on an ephemeral port of the loopback interface only, serves at most ``max_requests``
requests and at most ``max_seconds`` of wall time, and stops by itself when its ``with`` block
ends (or when either bound is reached). Any HTTP client can be pointed at ``server.url``:
``OpenAI(base_url=server.url + "/v1")`` or ``AzureOpenAI(azure_endpoint=server.url)``.

Served: ``POST /v1/chat/completions`` (OpenAI), ``POST /openai/deployments/<name>/chat/completions``
(Azure), ``GET /health``. A ``reset`` fault aborts the connection; a cut stream sends ``k`` SSE
chunks and then aborts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from .faults import ProviderFaults
from .stream_faults import error_event
from .trace import HTTP_ID_HEADER, Trace
from .transport import FakeProvider, error_body

HOST = "127.0.0.1"
_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class LoopbackServer:
    """``with LoopbackServer(faults, seed, trace) as server: ...`` (see the module docstring)."""

    def __init__(
        self,
        faults: Mapping[str, ProviderFaults],
        seed: int,
        trace: Trace | None = None,
        *,
        time_scale: float = 0.01,
        timeouts: Mapping[str, float] | None = None,
        max_requests: int = 10_000,
        max_seconds: float = 120.0,
    ) -> None:
        if not 0 < time_scale <= 1:
            raise ValueError(
                f"time_scale: real seconds per simulated second in (0, 1], got {time_scale}."
            )
        self.trace = trace if trace is not None else Trace()
        self.scale = time_scale
        self.timeouts = dict(timeouts or {})
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.fake = FakeProvider(faults, seed, self.trace, self.now)
        self.served = 0
        self.port = 0
        self._t0 = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    # -- time -------------------------------------------------------------------------------
    def now(self) -> float:
        """Simulated seconds since the server started."""
        return (time.monotonic() - self._t0) / self.scale

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        self._thread = threading.Thread(target=self._serve, name="chaos-loopback", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("chaos loopback server did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"chaos loopback server failed to start: {self._error}")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not self._stopped.is_set():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._stop_event.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()/the caller
            self._error = exc
            self._ready.set()
        finally:
            self._stopped.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._t0 = time.monotonic()
        self._ready.set()
        async with server:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), self.max_seconds)
            server.close()
        # connections still open are dropped with the loop

    # -- HTTP -------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self._stop_event.is_set():
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
                path = target.split("?", 1)[0]
                keep = await self._respond(method, path, headers, body, writer)
                if not keep:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _write(
        self, writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        head = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}"]
        headers = {**headers, "content-length": str(len(body)), "connection": "keep-alive"}
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    async def _respond(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if method == "GET" and path == "/health":
            await self._write(writer, 200, {"content-type": "application/json"}, b'{"ok":true}')
            return True
        if method != "POST" or not path.endswith("/chat/completions"):
            await self._write(
                writer, 404, {"content-type": "application/json"}, error_body(404, "no route")
            )
            return True
        with self._lock:
            self.served += 1
            over = self.served > self.max_requests
        if over:
            self._stop_event.set()
            await self._write(
                writer,
                503,
                {"content-type": "application/json"},
                error_body(503, "request bound reached"),
            )
            return False
        provider = "azure" if path.startswith("/openai/deployments/") else "openai"
        fake = self.fake
        start = self.now()
        outcome, sent = fake.decide(
            provider, path, headers, body, self._timeout_for(provider, path, body)
        )
        model, stream = sent.model, sent.stream
        if outcome.latency > 0:
            await asyncio.sleep(outcome.latency * self.scale)
        kind = outcome.kind
        if kind in ("reset", "read_timeout"):
            if kind == "read_timeout":
                # hold the answer past the client's (scaled) timeout, then drop the connection
                await asyncio.sleep(0.25)
            fake.record(sent, provider, start, outcome)
            writer.transport.abort()
            return False
        if kind == "ok" and stream:
            http_id = len(fake.trace.http)
            fake.record(sent, provider, start, outcome)
            head = (
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                f"{HTTP_ID_HEADER}: {http_id}\r\n"
                "transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
            )
            writer.write(head.encode())
            if outcome.stall > 0:  # headers now, the first chunk only after the stall
                await writer.drain()
                await asyncio.sleep(outcome.stall * self.scale)
            if outcome.error_event is not None:
                event = error_event(outcome.error_event)
                writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n0\r\n\r\n")
                await writer.drain()
                return True
            for i, chunk in enumerate(fake.chunks(model)):
                if outcome.cut_after is not None and i >= outcome.cut_after:
                    await writer.drain()
                    writer.transport.abort()
                    return False
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if kind == "ok":
            fake.record(sent, provider, start, outcome)
            await self._write(writer, 200, {"content-type": "application/json"}, fake.body(model))
            return True
        status = int(kind)
        error_headers = fake.error_headers(outcome)  # names the record appended next
        fake.record(sent, provider, start, outcome)
        await self._write(writer, status, error_headers, error_body(status, outcome.source))
        return True

    def _timeout_for(self, provider: str, path: str, body: bytes) -> float:
        import json

        try:
            data: Any = json.loads(body) if body else {}
        except ValueError:
            return float("inf")
        key, _ = self.fake.key_of(provider, path, data)
        return self.timeouts.get(key, float("inf"))
