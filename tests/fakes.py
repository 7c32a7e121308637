"""An in-process fake provider behind the real OpenAI SDK (httpx2 for openai 3.x, httpx for 2.x).

Every request the SDK sends is recorded (provider, model, body, timeout, headers), and answered
from a per-model script of replies (default: a successful completion).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import openai

OPENAI_MAJOR = int(openai.__version__.split(".", 1)[0])
if OPENAI_MAJOR >= 3:
    import httpx2 as H
else:
    import httpx as H  # type: ignore[no-redef]

AZURE_ENDPOINT = "https://res.openai.azure.com"
API_VERSION = "2024-10-21"

Reply = Callable[[Any], Any]  # request -> H.Response, or raises


def ok(content: str = "hi") -> Reply:
    return lambda request: _completion(request, content)


def status(code: int, headers: dict[str, str] | None = None) -> Reply:
    return lambda request: H.Response(
        code, headers=headers or {}, json={"error": {"message": f"fake {code}", "type": "fake"}}
    )


def read_timeout() -> Reply:
    def reply(request: Any) -> Any:
        raise H.ReadTimeout("fake read timeout", request=request)

    return reply


def connect_error() -> Reply:
    def reply(request: Any) -> Any:
        raise H.ConnectError("fake connection refused", request=request)

    return reply


def raises(exc: BaseException) -> Reply:
    def reply(request: Any) -> Any:
        raise exc

    return reply


def _completion(request: Any, content: str) -> Any:
    body = json.loads(request.content)
    if body.get("response_format"):
        content = json.dumps({"answer": content})
    if body.get("stream"):
        chunks = [
            {"role": "assistant", "content": ""},
            {"content": content},
        ]
        events = []
        for i, delta in enumerate(chunks):
            chunk = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "finish_reason": "stop" if i == len(chunks) - 1 else None,
                    }
                ],
            }
            events.append(f"data: {json.dumps(chunk)}\n\n")
        events.append("data: [DONE]\n\n")
        return H.Response(
            200, headers={"content-type": "text/event-stream"}, content="".join(events).encode()
        )
    return H.Response(
        200,
        json={
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        },
    )


@dataclass
class Sent:
    """One HTTP request as the fake provider received it."""

    provider: str
    path: str
    body: dict[str, Any]
    timeout: dict[str, float] | None
    headers: dict[str, str]

    @property
    def model(self) -> str:
        return str(self.body.get("model"))

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


class FakeProvider:
    """One fake service answering both the OpenAI and the Azure endpoints."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)

    # -- scripting -------------------------------------------------------------------------
    def script(self, key: str, *replies: Reply) -> None:
        """Queue replies for ``<provider>/<model>``; once used up, requests succeed."""
        self._scripts[key].extend(replies)

    def always(self, key: str, reply: Reply, n: int = 1000) -> None:
        self.script(key, *([reply] * n))

    # -- inspection ------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return [s.key for s in self.sent if s.path.endswith("/chat/completions")]

    def count(self, key: str) -> int:
        return self.keys().count(key)

    # -- transport -------------------------------------------------------------------------
    def handle(self, request: Any) -> Any:
        path = request.url.path
        provider = "azure" if path.startswith("/openai/") else "openai"
        body = json.loads(request.content) if request.content else {}
        self.sent.append(
            Sent(
                provider=provider,
                path=path,
                body=body,
                # as sent: the runtime may put a capped read timeout back once headers are in
                timeout=dict(request.extensions.get("timeout") or {}) or None,
                headers=dict(request.headers),
            )
        )
        if not path.endswith("/chat/completions"):
            return H.Response(
                200,
                json={
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.0]}],
                    "model": str(body.get("model")),
                    "usage": {"prompt_tokens": 1, "total_tokens": 1},
                },
            )
        queue = self._scripts.get(f"{provider}/{body.get('model')}")
        reply = queue.popleft() if queue else ok()
        return reply(request)

    async def handle_async(self, request: Any) -> Any:
        await request.aread()
        return self.handle(request)

    # -- clients ---------------------------------------------------------------------------
    def openai(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            api_key="sk-test-secret-key",
            http_client=H.Client(transport=H.MockTransport(self.handle)),
            **kwargs,
        )

    def azure(self, **kwargs: Any) -> openai.AzureOpenAI:
        return openai.AzureOpenAI(
            api_key="azure-test-secret-key",
            api_version=API_VERSION,
            azure_endpoint=AZURE_ENDPOINT,
            http_client=H.Client(transport=H.MockTransport(self.handle)),
            **kwargs,
        )

    def async_openai(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return _pin_platform(
            openai.AsyncOpenAI(
                api_key="sk-test-secret-key",
                http_client=H.AsyncClient(transport=H.MockTransport(self.handle_async)),
                **kwargs,
            )
        )

    def async_azure(self, **kwargs: Any) -> openai.AsyncAzureOpenAI:
        return _pin_platform(
            openai.AsyncAzureOpenAI(
                api_key="azure-test-secret-key",
                api_version=API_VERSION,
                azure_endpoint=AZURE_ENDPOINT,
                http_client=H.AsyncClient(transport=H.MockTransport(self.handle_async)),
                **kwargs,
            )
        )


class SleepRecorder:
    """A sync ``sleep`` for the runtime: records each wait and advances a virtual clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


class AsyncSleepRecorder(SleepRecorder):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        self.waits.append(seconds)
        self.now += seconds


USER = [{"role": "user", "content": "Hello!"}]


T = TypeVar("T")


def _pin_platform(client: T) -> T:
    """Look up the SDK's platform headers now, not in a worker thread on the first request.

    An async client does that lookup with ``asyncify(get_platform)``; under virtual time
    (looptime) an idle loop may fast-forward to the next timer while the thread runs.
    """
    from openai._base_client import get_platform

    client._platform = get_platform()  # type: ignore[attr-defined]
    return client


# -- scripted Server-Sent Event bodies (streams that stall, break or send an error event) ----------


def chunk_event(model: str, content: str | None, *, last: bool = False) -> bytes:
    """One ``chat.completion.chunk`` event (``content=None``: an empty delta)."""
    chunk = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "delta": {} if content is None else {"content": content},
                "finish_reason": "stop" if last else None,
            }
        ],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def error_event(error: dict[str, Any]) -> bytes:
    return f"data: {json.dumps({'error': error})}\n\n".encode()


DONE_EVENT = b"data: [DONE]\n\n"


class ScriptedBody(H.SyncByteStream, H.AsyncByteStream):  # type: ignore[misc]
    """A streamed body, one event per network read: ``stall`` seconds before the first one
    (sync: ``advance(stall)`` on a virtual clock, or a read timeout if the request's read timeout
    is shorter; async: ``asyncio.sleep``), and a dropped connection before event ``cut_before``."""

    def __init__(
        self,
        request: Any,
        events: list[bytes],
        *,
        cut_before: int | None,
        stall: float,
        advance: Callable[[float], None] | None,
    ) -> None:
        self.request, self.events, self.cut_before = request, events, cut_before
        self.stall, self.advance = stall, advance
        self.delivered = 0
        self.closed = False

    def _stall_timeout(self) -> float | None:
        read = (self.request.extensions.get("timeout") or {}).get("read")
        return read if read is not None and read < self.stall else None

    def _next(self, i: int) -> bytes:
        if self.cut_before is not None and i >= self.cut_before:
            raise H.RemoteProtocolError(
                "peer closed connection without sending complete message body (fake)"
            )
        self.delivered += 1
        return self.events[i]

    def __iter__(self) -> Any:
        for i in range(len(self.events)):
            if i == 0 and self.stall:
                limit = self._stall_timeout()
                if self.advance is not None:
                    self.advance(self.stall if limit is None else limit)
                if limit is not None:
                    raise H.ReadTimeout("fake read timeout", request=self.request)
            yield self._next(i)
        if self.cut_before is not None and self.cut_before >= len(self.events):
            self._next(len(self.events))

    async def __aiter__(self) -> Any:
        import asyncio

        for i in range(len(self.events)):
            if i == 0 and self.stall:
                limit = self._stall_timeout()
                await asyncio.sleep(self.stall if limit is None else limit)
                if limit is not None:
                    raise H.ReadTimeout("fake read timeout", request=self.request)
            yield self._next(i)
        if self.cut_before is not None and self.cut_before >= len(self.events):
            self._next(len(self.events))

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def sse(
    contents: tuple[str, ...] = ("Hel", "lo"),
    *,
    first: bytes | None = None,
    done: bool = True,
    cut_before: int | None = None,
    stall: float = 0.0,
    advance: Callable[[float], None] | None = None,
    bodies: list[ScriptedBody] | None = None,
) -> Reply:
    """A streamed answer: optional ``first`` raw event, one chunk per content, a final empty chunk,
    ``[DONE]``; see :class:`ScriptedBody` for ``cut_before``/``stall``. Each body built is appended
    to ``bodies``."""

    def reply(request: Any) -> Any:
        model = json.loads(request.content)["model"]
        events = [] if first is None else [first]
        events += [chunk_event(model, c) for c in contents]
        if contents:
            events.append(chunk_event(model, None, last=True))
        if done:
            events.append(DONE_EVENT)
        body = ScriptedBody(request, events, cut_before=cut_before, stall=stall, advance=advance)
        if bodies is not None:
            bodies.append(body)
        return H.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return reply
