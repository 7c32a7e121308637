"""The fake provider, behind the real SDK: an ``httpx`` (openai 2.x) or ``httpx2`` (openai 3.x)
transport.

The SDK builds real HTTP requests, and parses the fake answers and maps its errors (status codes
to ``RateLimitError``/``InternalServerError``..., ``ReadTimeout`` to ``APITimeoutError``, a reset
socket to ``APIConnectionError``) with its own code. OpenAI paths (``/v1/chat/completions``) and
Azure paths (``/openai/deployments/<deployment>/chat/completions``) are both served; streamed
requests get Server-Sent Events, cut after ``k`` chunks when the fault model says so.

:class:`FakeProvider` holds the decisions and the wire format; the in-process transports and the
loopback server (``chaos.server``) only deliver them.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from .faults import FaultSampler, Outcome, ProviderFaults
from .stream_bodies import needs_stalled_body, stalled_stream
from .trace import HTTP_ID_HEADER, REQUEST_HEADER, HttpRecord, Sent, Trace

#: Chunks in a complete streamed answer (before the final chunk and ``[DONE]``).
STREAM_CHUNKS = 4

_REASONS = {
    400: ("Bad Request", "invalid_request_error"),
    401: ("Unauthorized", "authentication_error"),
    403: ("Forbidden", "permission_denied"),
    404: ("Not Found", "not_found_error"),
    408: ("Request Timeout", "timeout"),
    409: ("Conflict", "conflict"),
    422: ("Unprocessable Entity", "invalid_request_error"),
    429: ("Too Many Requests", "rate_limit_exceeded"),
    500: ("Internal Server Error", "server_error"),
    502: ("Bad Gateway", "server_error"),
    503: ("Service Unavailable", "server_error"),
}

_AZURE_PATH = re.compile(r"/openai/deployments/([^/]+)/chat/completions$")


def sdk_http_module() -> Any:
    """The HTTP library the installed SDK speaks: ``httpx2`` for openai 3.x, ``httpx`` for 2.x."""
    import openai

    if int(openai.__version__.split(".", 1)[0]) >= 3:
        import httpx2

        return httpx2
    import httpx

    return httpx


def completion_body(model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-chaos",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
        separators=(",", ":"),
    ).encode()


def stream_chunks(model: str) -> list[bytes]:
    """The SSE events of a complete streamed answer, ``[DONE]`` last."""
    events = []
    for i in range(STREAM_CHUNKS + 1):
        last = i == STREAM_CHUNKS
        chunk = {
            "id": "chatcmpl-chaos",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "delta": {} if last else {"content": f"t{i}"},
                    "finish_reason": "stop" if last else None,
                }
            ],
        }
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def error_body(status: int, source: str) -> bytes:
    reason, kind = _REASONS.get(status, ("Error", "server_error"))
    return json.dumps(
        {"error": {"message": f"chaos: injected {status} {reason} ({source})", "type": kind}}
    ).encode()


class FakeProvider:
    """Every simulated ``<provider>/<model>``: its fault sampler, its wire format, the trace."""

    def __init__(
        self,
        faults: Mapping[str, ProviderFaults],
        seed: int,
        trace: Trace,
        clock: Callable[[], float],
    ) -> None:
        self.samplers = {
            key: FaultSampler(f, seed * 1_000_003 + i)
            for i, (key, f) in enumerate(sorted(faults.items()))
        }
        self.trace = trace
        self.clock = clock
        self._bodies: dict[str, bytes] = {}
        #: One copy of each distinct messages text (a run sends few distinct ones, many times).
        self._messages: dict[str, str] = {}
        self._chunks: dict[str, list[bytes]] = {}

    def key_of(self, provider: str, path: str, body: Mapping[str, Any]) -> tuple[str, str]:
        """(model key, model as the provider names it) of one chat completion request."""
        if provider == "azure":
            m = _AZURE_PATH.search(path)
            model = m.group(1) if m else str(body.get("model"))
        else:
            model = str(body.get("model"))
        return f"{provider}/{model}", model

    def decide(
        self, provider: str, path: str, headers: Mapping[str, str], raw_body: bytes, timeout: float
    ) -> tuple[Outcome, Sent]:
        """The outcome of one request, and what it carried (for the trace)."""
        body = json.loads(raw_body) if raw_body else {}
        key, model = self.key_of(provider, path, body)
        stream = bool(body.get("stream"))
        sampler = self.samplers.get(key)
        request = int(headers.get(REQUEST_HEADER, "-1"))
        messages = json.dumps(body.get("messages"), sort_keys=True, separators=(",", ":"))
        sent = Sent(
            request,
            key,
            model,
            str(body.get("model")),
            self._messages.setdefault(messages, messages),
            None if math.isinf(timeout) else timeout,
            stream,
        )
        if sampler is None:
            return Outcome("400", 0.0, source="unknown-model"), sent
        return sampler.draw(self.clock(), timeout, stream), sent

    def record(self, sent: Sent, provider: str, start: float, outcome: Outcome) -> None:
        self.trace.http.append(
            HttpRecord(
                sent.request,
                sent.key,
                provider,
                start,
                self.clock(),
                outcome.kind,
                None if outcome.retry_after is None else outcome.retry_after[2],
                outcome.source,
                sent.stream,
                outcome.latency,
                sent.body_model,
                sent.messages,
                sent.timeout,
                len(self.trace.http),
                None if outcome.retry_after is None else outcome.retry_after[0],
            )
        )

    def record_cancelled(self, sent: Sent, provider: str, start: float, outcome: Outcome) -> None:
        """A request its client cancelled before the answer: kept apart (``Trace.cancelled``)."""
        self.trace.cancelled.append(
            HttpRecord(
                sent.request,
                sent.key,
                provider,
                start,
                self.clock(),
                outcome.kind,
                None,
                "cancelled",
                sent.stream,
                outcome.latency,
                sent.body_model,
                sent.messages,
                sent.timeout,
            )
        )

    def body(self, model: str) -> bytes:
        cached = self._bodies.get(model)
        if cached is None:
            cached = self._bodies[model] = completion_body(model)
        return cached

    def chunks(self, model: str) -> list[bytes]:
        cached = self._chunks.get(model)
        if cached is None:
            cached = self._chunks[model] = stream_chunks(model)
        return cached

    def stream_headers(self) -> dict[str, str]:
        """Headers of a streamed 200: the index of its trace record (appended next), so the
        chunks a caller reads can be traced to the answer that sent them."""
        return {"content-type": "text/event-stream", HTTP_ID_HEADER: str(len(self.trace.http))}

    def error_headers(self, outcome: Outcome) -> dict[str, str]:
        """Headers of an error answer: its Retry-After, and the index of its trace record (so the
        error a caller receives can be traced to the answer it came from)."""
        headers = {"content-type": "application/json", HTTP_ID_HEADER: str(len(self.trace.http))}
        if outcome.retry_after is not None:
            headers[outcome.retry_after[0]] = outcome.retry_after[1]
        return headers


def _timeout_of(request: Any) -> float:
    timeout = request.extensions.get("timeout") or {}
    read = timeout.get("read")
    return float(read) if read is not None else float("inf")


def _decide(fake: FakeProvider, provider: str, request: Any, body: bytes) -> tuple[Outcome, Sent]:
    """:meth:`FakeProvider.decide` for an ``httpx``-like request whose body has been read."""
    return fake.decide(provider, request.url.path, request.headers, body, _timeout_of(request))


def make_transports(http: Any) -> tuple[type, type]:
    """(sync transport class, async transport class) for the ``httpx``-like module ``http``."""

    class CutStream(http.SyncByteStream):  # type: ignore[misc]
        def __init__(self, chunks: list[bytes], cut: int | None) -> None:
            self.chunks, self.cut = chunks, cut

        def __iter__(self) -> Iterator[bytes]:
            for i, chunk in enumerate(self.chunks):
                if self.cut is not None and i >= self.cut:
                    raise http.RemoteProtocolError(
                        "peer closed connection without sending complete message body (chaos)"
                    )
                yield chunk

    class AsyncCutStream(http.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, chunks: list[bytes], cut: int | None) -> None:
            self.chunks, self.cut = chunks, cut

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for i, chunk in enumerate(self.chunks):
                if self.cut is not None and i >= self.cut:
                    raise http.RemoteProtocolError(
                        "peer closed connection without sending complete message body (chaos)"
                    )
                yield chunk

    def respond(
        fake: FakeProvider,
        request: Any,
        outcome: Outcome,
        model: str,
        stream: bool,
        advance: Callable[[float], None] | None = None,
    ) -> Any:
        kind = outcome.kind
        if kind == "read_timeout":
            raise http.ReadTimeout("chaos: read timed out", request=request)
        if kind == "reset":
            raise http.ReadError("chaos: [Errno 104] Connection reset by peer", request=request)
        if kind == "ok":
            if stream:
                body = (
                    stalled_stream(
                        http, fake.chunks(model), outcome, is_async=False, advance=advance
                    )
                    if needs_stalled_body(outcome)
                    else CutStream(fake.chunks(model), outcome.cut_after)
                )
                return http.Response(
                    200, headers=fake.stream_headers(), stream=body, request=request
                )
            return http.Response(
                200,
                headers={"content-type": "application/json"},
                content=fake.body(model),
                request=request,
            )
        status = int(kind)
        return http.Response(
            status,
            headers=fake.error_headers(outcome),
            content=error_body(status, outcome.source),
            request=request,
        )

    def respond_async(
        fake: FakeProvider, request: Any, outcome: Outcome, model: str, stream: bool
    ) -> Any:
        if outcome.kind == "ok" and stream:
            body = (
                stalled_stream(http, fake.chunks(model), outcome, is_async=True)
                if needs_stalled_body(outcome)
                else AsyncCutStream(fake.chunks(model), outcome.cut_after)
            )
            return http.Response(200, headers=fake.stream_headers(), stream=body, request=request)
        return respond(fake, request, outcome, model, stream)

    class FakeTransport(http.BaseTransport):  # type: ignore[misc]
        """Sync: answers from the fault model, advancing the virtual clock by the latency."""

        def __init__(
            self, fake: FakeProvider, provider: str, advance: Callable[[float], None]
        ) -> None:
            self.fake, self.provider, self.advance = fake, provider, advance

        def handle_request(self, request: Any) -> Any:
            fake = self.fake
            start = fake.clock()
            outcome, sent = _decide(fake, self.provider, request, request.read())
            self.advance(outcome.latency)
            try:  # the answer first (its headers name the record appended next), then the record
                return respond(fake, request, outcome, sent.model, sent.stream, self.advance)
            finally:
                fake.record(sent, self.provider, start, outcome)

    class AsyncFakeTransport(http.AsyncBaseTransport):  # type: ignore[misc]
        """Async: the latency is an ``asyncio.sleep`` (virtual on :class:`VirtualTimeLoop`)."""

        def __init__(self, fake: FakeProvider, provider: str) -> None:
            self.fake, self.provider = fake, provider

        async def handle_async_request(self, request: Any) -> Any:
            fake = self.fake
            start = fake.clock()
            outcome, sent = _decide(fake, self.provider, request, await request.aread())
            if outcome.latency > 0:
                try:
                    await asyncio.sleep(outcome.latency)
                except asyncio.CancelledError:  # the client gave up on it (e.g. a hedge's loser)
                    fake.record_cancelled(sent, self.provider, start, outcome)
                    raise
            try:
                return respond_async(fake, request, outcome, sent.model, sent.stream)
            finally:
                fake.record(sent, self.provider, start, outcome)

    return FakeTransport, AsyncFakeTransport


def make_clients(
    providers: set[str], *, is_async: bool, transport_for: Callable[[str], Any], http: Any
) -> list[Any]:
    """One SDK client per provider (``OpenAI``/``AzureOpenAI``, or their async twins) whose HTTP
    goes to ``transport_for(provider)``."""
    import openai

    clients = []
    for provider in sorted(providers):
        transport = transport_for(provider)
        http_client = (http.AsyncClient if is_async else http.Client)(transport=transport)
        if provider == "azure":
            cls: Any = openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI
            clients.append(
                cls(
                    api_key="chaos",
                    api_version="2024-10-21",
                    azure_endpoint="http://azure.chaos.invalid",
                    http_client=http_client,
                )
            )
        else:
            cls = openai.AsyncOpenAI if is_async else openai.OpenAI
            clients.append(
                cls(
                    api_key="chaos",
                    base_url="http://openai.chaos.invalid/v1",
                    http_client=http_client,
                )
            )
    if is_async:
        _pin_platform(clients)
    return clients


def _pin_platform(clients: list[Any]) -> None:
    """Give async clients their platform up front.

    On its first request an async SDK client looks up its platform headers in a worker thread
    (``asyncify(get_platform)``). While that thread runs, a :class:`VirtualTimeLoop` has nothing
    ready and jumps virtual time to the next timer, so requests started at once would begin at
    different virtual times (seen as a rare off-by-one-latency flake). The lookup is the SDK's own
    ``get_platform()``, done here, synchronously, before any virtual time passes.
    """
    from openai._base_client import get_platform

    platform = get_platform()
    for client in clients:
        client._platform = platform
