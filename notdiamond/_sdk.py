"""What this library needs to know about the OpenAI SDK, in one place (openai 2.x and 3.x)."""

from __future__ import annotations

import sys
from typing import Any, Final, Literal

from openai import AsyncAzureOpenAI, AsyncOpenAI, AsyncStream, AzureOpenAI, OpenAI, Stream
from openai._models import FinalRequestOptions

__all__ = [
    "CHAT_COMPLETIONS_PATH",
    "FinalRequestOptions",
    "Provider",
    "body_in_memory",
    "body_not_read",
    "classify_client",
    "client_of",
    "http_module_of",
    "http_module_of_client",
    "read_timeouts",
    "set_request_fields",
    "status_error",
    "streamed_response",
]

Provider = Literal["openai", "azure"]
PROVIDERS: Final[tuple[Provider, ...]] = ("openai", "azure")

#: The logical path of every chat completion (also for Azure: the deployment prefix is added later,
#: when the SDK builds the HTTP request from ``json_data["model"]``).
CHAT_COMPLETIONS_PATH: Final[str] = "/chat/completions"

SUPPORTED_CLIENTS = "OpenAI, AzureOpenAI, AsyncOpenAI or AsyncAzureOpenAI"


def classify_client(client: object) -> tuple[Provider, bool]:
    """Return ``(provider, is_async)`` for a supported client, else raise ``TypeError``.

    ``AzureOpenAI`` subclasses ``OpenAI``, so the Azure classes are tested first: the answer never
    depends on the order in which the caller lists its clients.
    """
    if isinstance(client, AzureOpenAI):
        return "azure", False
    if isinstance(client, AsyncAzureOpenAI):
        return "azure", True
    if isinstance(client, OpenAI):
        return "openai", False
    if isinstance(client, AsyncOpenAI):
        return "openai", True
    raise TypeError(
        f"notdiamond.init() manages OpenAI SDK clients; got {type(client).__name__}. "
        f"Pass an instance of openai.{SUPPORTED_CLIENTS} (or a list of them)."
    )


def set_request_fields(
    options: FinalRequestOptions, timeout: Any, json_data: dict[str, Any], no_sdk_retries: bool
) -> None:
    """Write one attempt's body and timeout (and ``max_retries=0``) into the SDK's request options.

    Stored straight into the model's ``__dict__``, as pydantic's ``__setattr__`` would for a model
    without assignment validation, minus its per-assignment checks (about 2 µs per attempt). The
    SDK reads these fields as attributes and never dumps the options, so the pydantic set of
    explicitly set fields is left alone. The object is built fresh by the SDK for each call and
    copied by ``client.request`` before use, so writing it between attempts is safe.
    """
    fields = options.__dict__
    fields["json_data"] = json_data
    fields["timeout"] = timeout
    if no_sdk_retries:
        fields["max_retries"] = 0


def placeholder_request(client: Any, options: FinalRequestOptions) -> Any:
    """The HTTP request a call would send, for errors raised without sending one (a deadline).

    The SDK's exceptions carry the request; this builds it the SDK's way, sending nothing.
    """
    try:
        return client._build_request(options)
    except Exception:  # the error being raised matters more than its request attribute
        return None


# -- Streams -------------------------------------------------------------------------------------
# What priming a streamed answer (``notdiamond._streams``) needs to know about the SDK's objects.
#
# * ``create(stream=True)`` and ``.stream(...)`` get a ``Stream``/``AsyncStream``, whose ``response``
#   is the HTTP response, its body not read yet. ``with_raw_response``/``with_streaming_response``
#   get an ``APIResponse``/``AsyncAPIResponse``/``LegacyAPIResponse`` whose ``http_response`` is that
#   response; ``.parse()`` builds the ``Stream`` from it later. Every way of reading the body
#   (the SDK's SSE decoder, ``iter_bytes``, ``iter_lines``) ends in ``response.iter_raw()``, which
#   iterates ``response.stream`` (an ``httpx``/``httpx2`` ``SyncByteStream``/``AsyncByteStream``),
#   and ``response.close()``/``aclose()`` closes that same object. So replacing ``response.stream``
#   before the body is read reaches every reader.
# * The SDK's own errors are built as ``APIConnectionError(message=, request=)``,
#   ``APITimeoutError(request)`` and ``client._make_status_error(message, body=, response=)`` (the
#   status error subclass of the response's status), identical in both majors.
# * openai 3.x clients may carry an ``httpx2`` or an ``httpx`` HTTP client; the response's class
#   says which library's stream types and exceptions apply.


def streamed_response(result: object) -> Any | None:
    """The HTTP response under a streamed call's result, or ``None`` if ``result`` has none."""
    if isinstance(result, (Stream, AsyncStream)):
        return result.response
    return getattr(result, "http_response", None)  # APIResponse, AsyncAPIResponse, Legacy...


def client_of(result: object) -> Any | None:
    """The SDK client that made ``result`` (``Stream``s and API responses keep it as ``_client``)."""
    return getattr(result, "_client", None)


def http_module_of(response: object) -> Any:
    """``httpx2`` or ``httpx``: the library whose ``Response`` class ``response`` is."""
    return sys.modules[type(response).__module__.split(".", 1)[0]]


def http_module_of_client(client: Any) -> Any:
    """``httpx2`` or ``httpx``: the library of an SDK client's HTTP client (the SDK subclasses it)."""
    for cls in type(client._client).__mro__:
        name = cls.__module__.split(".", 1)[0]
        if name in ("httpx", "httpx2"):
            return sys.modules[name]
    raise TypeError(f"{type(client._client).__name__} is neither an httpx nor an httpx2 client")


def read_timeouts(response: Any) -> dict[str, float | None] | None:
    """The request's timeout dict that the HTTP library reads when the response body starts.

    ``httpx``/``httpx2`` put ``Timeout.as_dict()`` in ``request.extensions["timeout"]`` and pass the
    same dict to ``httpcore``/``httpcore2``: an HTTP/1.1 connection reads its ``"read"`` entry when
    it waits for the headers and again when the body is first iterated (HTTP/2: at every read).
    """
    timeouts = response.request.extensions.get("timeout")
    return timeouts if isinstance(timeouts, dict) else None


def body_not_read(response: Any) -> bool:
    return not response.is_stream_consumed and not response.is_closed


def body_in_memory(response: Any) -> bytes | None:
    """The body of a response loaded whole before the SDK saw it, else ``None``.

    A ``Response(content=...)`` (what mock transports usually return) reads its body at once, so
    the SDK's stream then decodes it from memory; a streamed network response is never loaded.
    """
    try:
        return response.content  # type: ignore[no-any-return]
    except http_module_of(response).ResponseNotRead:
        return None


def status_error(client: Any, message: str, body: object, status: int, response: Any) -> Exception:
    """The SDK's own status error (``RateLimitError``, ``InternalServerError``...) for ``status``.

    For an error the server sent inside a stream of status 200: the response passed to the SDK
    carries the status the event names, the stream's headers and its request.
    """
    named = type(response)(status, headers=response.headers, request=response.request)
    return client._make_status_error(message, body=body, response=named)  # type: ignore[no-any-return]
