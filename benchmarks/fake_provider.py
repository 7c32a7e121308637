"""An in-process fake OpenAI/Azure provider: canned responses served through ``MockTransport``.

Stdlib, ``openai`` and its HTTP library only: the runner of the original NotDiamond SDK imports this
module from its own virtualenv, where this project is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

import openai

#: openai 3.x speaks httpx2, 2.x speaks httpx.
OPENAI_MAJOR: Final[int] = int(openai.__version__.split(".", 1)[0])

if OPENAI_MAJOR >= 3:
    import httpx2 as http
else:  # pragma: no cover - exercised under openai 2.x
    import httpx as http  # type: ignore[no-redef]

AZURE_ENDPOINT: Final = "https://res.openai.azure.com"
AZURE_API_VERSION: Final = "2024-10-21"
API_KEY: Final = "sk-fake"  # a placeholder: nothing leaves the process

__all__ = [
    "API_KEY",
    "MESSAGES",
    "OPENAI_MAJOR",
    "async_openai_client",
    "azure_client",
    "completion_body",
    "http",
    "openai_client",
    "stream_body",
    "succeed",
]

Handler = Callable[[Any], Any]
AsyncHandler = Callable[[Any], Awaitable[Any]]


def completion_body(model: str = "gpt-4o") -> bytes:
    """A minimal, valid ``chat.completion`` JSON body."""
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()


def stream_body(model: str = "gpt-4o", chunks: int = 3) -> bytes:
    """A server-sent-event body of ``chunks`` ``chat.completion.chunk`` events and ``[DONE]``."""
    events = []
    for i in range(chunks):
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "ok"} if i else {"role": "assistant", "content": ""},
                    "finish_reason": "stop" if i == chunks - 1 else None,
                }
            ],
        }
        events.append(f"data: {json.dumps(chunk)}\n\n")
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


_COMPLETION: Final = completion_body()
_STREAM: Final = stream_body()


def succeed(request: Any) -> Any:
    """Handler: a successful completion, streamed if the request body asks for a stream."""
    streaming = b'"stream":true' in request.content.replace(b" ", b"")
    if streaming:
        return http.Response(200, content=_STREAM, headers={"content-type": "text/event-stream"})
    return http.Response(200, content=_COMPLETION, headers={"content-type": "application/json"})


async def succeed_async(request: Any) -> Any:
    return succeed(request)


def openai_client(handler: Handler = succeed, **options: Any) -> openai.OpenAI:
    """A sync ``OpenAI`` client whose HTTP requests go to ``handler``."""
    transport = http.MockTransport(handler)
    return openai.OpenAI(api_key=API_KEY, http_client=http.Client(transport=transport), **options)


def azure_client(handler: Handler = succeed, **options: Any) -> openai.AzureOpenAI:
    """A sync ``AzureOpenAI`` client whose HTTP requests go to ``handler``."""
    transport = http.MockTransport(handler)
    return openai.AzureOpenAI(
        api_key=API_KEY,
        api_version=AZURE_API_VERSION,
        azure_endpoint=AZURE_ENDPOINT,
        http_client=http.Client(transport=transport),
        **options,
    )


def async_openai_client(
    handler: AsyncHandler = succeed_async, **options: Any
) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` client whose HTTP requests go to the coroutine ``handler``."""
    transport = http.MockTransport(cast(Any, handler))
    return openai.AsyncOpenAI(
        api_key=API_KEY, http_client=http.AsyncClient(transport=transport), **options
    )


MESSAGES: Final = [{"role": "user", "content": "ping"}]
