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
from http import HTTPStatus
from types import TracebackType
from typing import Any

import h11

from .faults import ProviderFaults
from .stream_faults import error_event
from .trace import HTTP_ID_HEADER, Trace
from .transport import FakeProvider, error_body

HOST = "127.0.0.1"


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

    # -- HTTP (the wire format is h11's: parsing, framing, keep-alive) ----------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while not self._stop_event.is_set():
                request = await _next_event(conn, reader)
                if not isinstance(request, h11.Request):
                    return  # the client closed the connection
                body = bytearray()
                while isinstance(event := await _next_event(conn, reader), h11.Data):
                    body += event.data
                if not isinstance(event, h11.EndOfMessage):
                    return
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers}
                path = request.target.decode("latin-1").split("?", 1)[0]
                method = request.method.decode("ascii")
                keep = await self._respond(method, path, headers, bytes(body), conn, writer)
                if not keep or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _write(
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        """One whole answer (``content-length`` framing)."""
        head = {**headers, "content-length": str(len(body))}
        writer.write(conn.send(_response(status, head)))
        writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()

    async def _respond(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
    ) -> bool:
        json_type = {"content-type": "application/json"}
        if method == "GET" and path == "/health":
            await self._write(conn, writer, 200, json_type, b'{"ok":true}')
            return True
        if method != "POST" or not path.endswith("/chat/completions"):
            await self._write(conn, writer, 404, json_type, error_body(404, "no route"))
            return True
        with self._lock:
            self.served += 1
            over = self.served > self.max_requests
        if over:
            self._stop_event.set()
            await self._write(
                conn, writer, 503, json_type, error_body(503, "request bound reached")
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
            # no content-length: h11 frames the events as chunks
            head = {"content-type": "text/event-stream", HTTP_ID_HEADER: str(http_id)}
            writer.write(conn.send(_response(200, head)))
            if outcome.stall > 0:  # headers now, the first chunk only after the stall
                await writer.drain()
                await asyncio.sleep(outcome.stall * self.scale)
            if outcome.error_event is not None:
                writer.write(conn.send(h11.Data(data=error_event(outcome.error_event))))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                return True
            for i, chunk in enumerate(fake.chunks(model)):
                if outcome.cut_after is not None and i >= outcome.cut_after:
                    await writer.drain()
                    writer.transport.abort()
                    return False
                writer.write(conn.send(h11.Data(data=chunk)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            return True
        if kind == "ok":
            fake.record(sent, provider, start, outcome)
            await self._write(conn, writer, 200, json_type, fake.body(model))
            return True
        status = int(kind)
        error_headers = fake.error_headers(outcome)  # names the record appended next
        fake.record(sent, provider, start, outcome)
        await self._write(conn, writer, status, error_headers, error_body(status, outcome.source))
        return True

    def _timeout_for(self, provider: str, path: str, body: bytes) -> float:
        import json

        try:
            data: Any = json.loads(body) if body else {}
        except ValueError:
            return float("inf")
        key, _ = self.fake.key_of(provider, path, data)
        return self.timeouts.get(key, float("inf"))


def _response(status: int, headers: dict[str, str]) -> h11.Response:
    return h11.Response(
        status_code=status,
        headers=list(headers.items()),
        reason=HTTPStatus(status).phrase.encode("ascii"),
    )


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> object:
    """The connection's next HTTP event, reading from the socket as h11 asks."""
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await reader.read(65536)
        conn.receive_data(data)  # b"" tells h11 the client closed the connection
