"""Streamed attempts (SPEC 4.9): the first chunk is part of the attempt.

A streamed call's result (``Stream``, ``AsyncStream``, or the ``APIResponse`` of
``with_raw_response``/``with_streaming_response``) arrives when the HTTP headers do; its body has
not been read. :func:`prime_sync`/:func:`prime_async` read the body up to the end of its first
Server-Sent Event inside the attempt, so that a stream which ends, breaks, sends an error event or
stays silent too long before its first chunk is a failed attempt of that model (SPEC 4.3 to 4.5).

On success the result is returned unchanged, except that its HTTP response now reads from a byte
stream that yields the bytes already read first and then the rest of the body, unbuffered: the SDK
decodes the same bytes it would have decoded, so every reader (the SDK's ``Stream``, ``.parse()``,
``iter_bytes``, ``iter_lines``) sees the whole answer from its first chunk. Nothing beyond the bytes
of the first event (and whatever arrived in the same network reads) is held.

Failures before the first chunk:

* the body ends (``[DONE]`` or end of body) or the connection breaks: ``openai.APIConnectionError``
  (transient);
* an error event (``data: {"error": {...}}``): the SDK's status error of the HTTP status the event
  names (``status``/``status_code``/``code`` field, else its ``type``/``code`` name such as
  ``server_error`` or ``rate_limit_exceeded``), so it is retried exactly like that status; an event
  that names no status is the SDK's plain ``openai.APIError`` (not transient);
* no first chunk ``first_chunk_timeout`` seconds after the attempt was sent:
  ``openai.APITimeoutError`` (transient).

After the first chunk a broken body reaches the caller as the SDK's ``APIConnectionError`` (or
``APITimeoutError``), in both SDK majors, with a note naming the model and how many chunks were
received; it is never replayed.

A compressed body (``Content-Encoding``) is not decoded here: its first non-empty read counts as
its first chunk (an end or a break before it is still a failed attempt; an error event in it is left
to the SDK).

Time: async attempts race the first chunk against the manager's injected ``sleep`` (virtual time in
tests and in the chaos harness). A sync thread cannot be interrupted by a clock, so sync attempts use
two safe mechanisms: when the response runs over a plain HTTP/1.1 socket, a timer thread shuts that
socket down (``shutdown(SHUT_RDWR)``, never ``close``: the blocked read returns at once and the
descriptor stays owned by the HTTP library) if no first chunk arrived in time; and, whatever the
transport, a first chunk read on the injected clock after the limit is a timeout too. The wait for the
response headers of a sync attempt is bounded by the HTTP library's read timeout, cut to the limit
for that wait only (:func:`cap_header_wait`) and put back before the body is read.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Final, TypeVar

import anyio
import openai

from ._sdk import (
    body_in_memory,
    body_not_read,
    client_of,
    http_module_of,
    http_module_of_client,
    read_timeouts,
    status_error,
    streamed_response,
)

__all__ = [
    "cap_header_wait",
    "first_event_data",
    "prime_async",
    "prime_sync",
    "send_and_prime_async",
]

T = TypeVar("T")

#: Error ``type``/``code`` names and the HTTP status they stand for, when the event names no number.
STATUS_OF_NAME: Final[dict[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "timeout": 408,
    "rate_limit_exceeded": 429,
    "rate_limit_error": 429,
    "server_error": 500,
    "api_error": 500,
    "service_unavailable": 503,
    "overloaded_error": 529,
}

_STATUS_FIELDS: Final = ("status", "status_code", "code")


# -- the first event ----------------------------------------------------------------------------


def first_event_data(buffer: bytes) -> str | None:
    """The data of the first complete Server-Sent Event in ``buffer``, or ``None`` if none is yet.

    Lines end with CR, LF or CRLF; an event ends with an empty line; comment lines and events with
    neither ``data`` nor ``event`` fields dispatch nothing (as in the SDK's own decoder).
    """
    text = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data: list[bytes] = []
    dispatch = False
    start = 0
    while True:
        end = text.find(b"\n", start)
        if end < 0:
            return None
        line = text[start:end]
        start = end + 1
        if not line:
            if dispatch:
                return b"\n".join(data).decode("utf-8", "replace")
            continue
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
            dispatch = True
        elif name == b"event":
            dispatch = True


def named_status(error: object) -> int | None:
    """The HTTP status an error event names: a number field, else a known ``code``/``type``."""
    if not isinstance(error, dict):
        return None
    for field in _STATUS_FIELDS:
        value = error.get(field)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    for field in ("code", "type"):
        value = error.get(field)
        if isinstance(value, str) and value in STATUS_OF_NAME:
            return STATUS_OF_NAME[value]
    return None


def _first_event_error(data: str, result: Any, response: Any, key: str) -> Exception | None:
    """The failure a first event stands for (end of stream, error event), or ``None``: a chunk."""
    if data.startswith("[DONE]"):
        return _ended(response, key)
    try:
        parsed = json.loads(data)
    except ValueError:
        return None  # not ours to judge: the SDK reports it as it would have
    if not isinstance(parsed, dict) or not parsed.get("error"):
        return None
    error = parsed["error"]
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = "An error occurred during streaming"
    status = named_status(error)
    client = client_of(result)
    if status is None or client is None:
        exc: Exception = openai.APIError(message, response.request, body=error)
    else:
        exc = status_error(client, message, parsed, status, response)
    _note(exc, f"notdiamond: {key} sent an error event before its first chunk")
    return exc


def _check_in_memory(result: T, response: Any, key: str) -> T:
    """A body already in memory (a mock's ``content=``): judge its first event the same way."""
    content = body_in_memory(response)
    if content is None:
        return result
    data = first_event_data(content)  # ``content`` is decoded already
    failure = (
        _ended(response, key) if data is None else _first_event_error(data, result, response, key)
    )
    if failure is not None:
        raise failure
    return result


# -- errors -------------------------------------------------------------------------------------


def _note(exc: BaseException, text: str) -> None:
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(text)


def _ended(response: Any, key: str) -> openai.APIConnectionError:
    return openai.APIConnectionError(
        message=f"Connection error: the stream of {key} ended before its first chunk.",
        request=response.request,
    )


def _timeout(request: Any, key: str, limit: float) -> openai.APITimeoutError:
    exc = openai.APITimeoutError(request=request)
    _note(exc, f"notdiamond: no first chunk from {key} within {limit:g}s of sending the attempt")
    return exc


def _transport_errors(http: Any) -> tuple[type[BaseException], ...]:
    """What reading a body raises when the connection fails (as the SDK 3.x maps them)."""
    return (http.TransportError, ssl.SSLError, anyio.EndOfStream, OSError)


def _connection_error(
    exc: BaseException, http: Any, request: Any, text: str
) -> openai.APIConnectionError:
    """The SDK's error for a transport failure while reading a body, with ``text`` in it."""
    if isinstance(exc, http.TimeoutException):
        error: openai.APIConnectionError = openai.APITimeoutError(request=request)
        _note(error, text)
        return error
    error = openai.APIConnectionError(message=f"Connection error: {text}.", request=request)
    _note(error, text)
    return error


class _ChunkCount:
    """Counts the Server-Sent Events that passed (empty lines after LF or CRLF), across reads."""

    __slots__ = ("events", "tail")

    def __init__(self, head: list[bytes]) -> None:
        self.events = 0
        self.tail = b""
        for chunk in head:
            self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        joined = self.tail + chunk
        self.events += joined.count(b"\n\n") + joined.count(b"\r\n\r\n")
        self.events -= self.tail.count(b"\n\n") + self.tail.count(b"\r\n\r\n")
        self.tail = joined[-3:]

    def broke(self, key: str) -> str:
        n = self.events
        return f"the stream of {key} broke after {n} chunk{'' if n == 1 else 's'}; not replayed"


# -- the primed byte streams (one pair of classes per HTTP library) ------------------------------

_primed_classes: dict[str, tuple[type, type]] = {}


def _primed(http: Any) -> tuple[type, type]:
    classes = _primed_classes.get(http.__name__)
    if classes is None:
        classes = _primed_classes[http.__name__] = _make_primed_classes(http)
    return classes


def _make_primed_classes(http: Any) -> tuple[type, type]:
    errors = _transport_errors(http)

    class PrimedStream(http.SyncByteStream):  # type: ignore[misc]
        """The bytes read while priming, then the rest of the body; breaks become SDK errors."""

        def __init__(
            self, head: list[bytes], rest: Iterator[bytes], source: Any, request: Any, key: str
        ) -> None:
            self.head, self.rest, self.source, self.request, self.key = (
                head,
                rest,
                source,
                request,
                key,
            )

        def __iter__(self) -> Iterator[bytes]:
            head, self.head = self.head, []
            count = _ChunkCount(head)
            yield from head
            del head
            try:
                for chunk in self.rest:
                    count.feed(chunk)
                    yield chunk
            except errors as exc:
                raise _connection_error(exc, http, self.request, count.broke(self.key)) from exc

        def close(self) -> None:
            close = getattr(self.rest, "close", None)
            if close is not None:
                close()
            self.source.close()

    class AsyncPrimedStream(http.AsyncByteStream):  # type: ignore[misc]
        def __init__(
            self,
            head: list[bytes],
            rest: AsyncIterator[bytes],
            source: Any,
            request: Any,
            key: str,
        ) -> None:
            self.head, self.rest, self.source, self.request, self.key = (
                head,
                rest,
                source,
                request,
                key,
            )

        async def __aiter__(self) -> AsyncIterator[bytes]:
            head, self.head = self.head, []
            count = _ChunkCount(head)
            for chunk in head:
                yield chunk
            del head
            try:
                async for chunk in self.rest:
                    count.feed(chunk)
                    yield chunk
            except errors as exc:
                raise _connection_error(exc, http, self.request, count.broke(self.key)) from exc

        async def aclose(self) -> None:
            aclose = getattr(self.rest, "aclose", None)
            if aclose is not None:
                await aclose()
            await self.source.aclose()

    return PrimedStream, AsyncPrimedStream


# -- sync ---------------------------------------------------------------------------------------


class _SocketWatchdog:
    """Shuts a socket down (both directions) after ``seconds`` unless disarmed first.

    ``shutdown`` makes a read blocked on the socket in another thread return at once, and the
    HTTP library then fails that read and discards the connection; the descriptor itself is left
    to its owner (closing it from here could hand its number to another socket meanwhile).
    """

    __slots__ = ("_lock", "_sock", "_state", "_timer")

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._state = "armed"
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._state != "armed":
                return
            self._state = "fired"
            # The base class's method: an SSLSocket's own shutdown also drops its TLS object,
            # which the reading thread may be using.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def disarm(self) -> bool:
        """Stop the timer; ``True`` if it had already fired."""
        self._timer.cancel()
        with self._lock:
            fired = self._state == "fired"
            self._state = "disarmed"
        return fired

    @staticmethod
    def socket_of(response: Any) -> socket.socket | None:
        """The socket of a plain HTTP/1.1 response (HTTP/2 multiplexes other calls on it)."""
        if response.http_version != "HTTP/1.1":
            return None
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        return sock if isinstance(sock, socket.socket) else None


def _content_encoded(response: Any) -> bool:
    """A compressed body: its first bytes stand for its first chunk (they cannot be parsed here)."""
    return response.headers.get("content-encoding", "identity").strip().lower() not in (
        "",
        "identity",
    )


def _close(response: Any, rest: Any) -> None:
    for target in (getattr(rest, "close", None), response.close):
        if target is not None:
            with contextlib.suppress(Exception):  # already failing: the first error is the one
                target()


def cap_header_wait(client: Any, timeout: Any, limit: float) -> tuple[Any, float | None] | None:
    """A sync streamed attempt's ``timeout`` with its read part cut to ``limit``, or ``None``.

    A sync thread waiting for the response headers can only be stopped by the HTTP library's own
    read timeout. So the attempt is sent with ``read=limit`` (when that is shorter), and
    :func:`prime_sync` puts the original read timeout back (the second value) once the headers
    are in, before the body is read: from then on its socket watchdog bounds the wait.
    """
    if isinstance(timeout, int | float) or timeout is None:
        connect = read = write = pool = timeout
    else:  # an httpx/httpx2 Timeout
        connect, read, write, pool = timeout.connect, timeout.read, timeout.write, timeout.pool
    if read is not None and read <= limit:
        return None
    capped = http_module_of_client(client).Timeout(
        connect=connect, read=limit, write=write, pool=pool
    )
    return capped, read


def prime_sync(
    result: T,
    *,
    key: str,
    sent: float = 0.0,
    first_chunk_timeout: float | None = None,
    clock: Callable[[], float] | None = None,
    read_timeout: tuple[float | None] | None = None,
) -> T:
    """Read ``result``'s body up to its first chunk, inside the attempt (see the module docstring).

    ``key`` names the model in errors; ``sent`` is ``clock()`` when the attempt was sent;
    ``read_timeout``: the read timeout to put back before the body is read (see
    :func:`cap_header_wait`). Returns ``result`` itself (its response reading the primed bytes
    first) or raises the attempt's error.
    """
    response = streamed_response(result)
    if response is None:
        return result
    if not body_not_read(response):
        return _check_in_memory(result, response, key)
    if read_timeout is not None and (timeouts := read_timeouts(response)) is not None:
        timeouts["read"] = read_timeout[0]
    limit = first_chunk_timeout
    if limit is not None:
        assert clock is not None, "first_chunk_timeout needs the manager's clock"
        if clock() - sent > limit:  # the headers alone took too long
            _close(response, None)
            raise _timeout(response.request, key, limit)
    http = http_module_of(response)
    encoded = _content_encoded(response)
    source = response.stream
    rest = iter(source)
    head: list[bytes] = []
    watchdog: _SocketWatchdog | None = None
    if limit is not None and (sock := _SocketWatchdog.socket_of(response)) is not None:
        assert clock is not None
        watchdog = _SocketWatchdog(sock, max(0.0, limit - (clock() - sent)))
    try:
        data: str | None = None
        while data is None:
            try:
                chunk = next(rest)
            except StopIteration:
                raise _ended(response, key) from None
            if chunk:
                head.append(chunk)
                data = "" if encoded else first_event_data(b"".join(head))
    except Exception as exc:
        fired = watchdog is not None and watchdog.disarm()
        _close(response, rest)
        if fired:
            assert limit is not None
            raise _timeout(response.request, key, limit) from exc
        if isinstance(exc, _transport_errors(http)):
            text = f"the stream of {key} broke before its first chunk"
            raise _connection_error(exc, http, response.request, text) from exc
        raise
    except BaseException:
        if watchdog is not None:
            watchdog.disarm()
        _close(response, rest)
        raise
    late = watchdog is not None and watchdog.disarm()
    if limit is not None and not late:
        assert clock is not None
        late = clock() - sent > limit
    failure = (
        _timeout(response.request, key, limit)
        if late and limit is not None
        else _first_event_error(data, result, response, key)
    )
    if failure is not None:
        _close(response, rest)
        raise failure
    primed, _ = _primed(http)
    response.stream = primed(head, rest, source, response.request, key)
    return result


# -- async --------------------------------------------------------------------------------------


async def _aclose(response: Any, rest: Any) -> None:
    with anyio.CancelScope(shield=True):
        for target in (getattr(rest, "aclose", None), response.aclose):
            if target is not None:
                with contextlib.suppress(Exception):  # already failing: the first error is the one
                    await target()


async def _prime_async(result: T, key: str) -> T:
    response = streamed_response(result)
    if response is None:
        return result
    if not body_not_read(response):
        return _check_in_memory(result, response, key)
    http = http_module_of(response)
    encoded = _content_encoded(response)
    source = response.stream
    rest = source.__aiter__()
    head: list[bytes] = []
    try:
        data: str | None = None
        while data is None:
            try:
                chunk = await rest.__anext__()
            except StopAsyncIteration:
                raise _ended(response, key) from None
            if chunk:
                head.append(chunk)
                data = "" if encoded else first_event_data(b"".join(head))
        failure = _first_event_error(data, result, response, key)
        if failure is not None:
            raise failure
    except BaseException as exc:
        await _aclose(response, rest)
        if isinstance(exc, _transport_errors(http)):
            text = f"the stream of {key} broke before its first chunk"
            raise _connection_error(exc, http, response.request, text) from exc
        raise
    _, primed = _primed(http)
    response.stream = primed(head, rest, source, response.request, key)
    return result


async def prime_async(
    result: T,
    *,
    key: str,
    sent: float = 0.0,
    first_chunk_timeout: float | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
) -> T:
    """The async :func:`prime_sync`: the limit is raced on the injected ``sleep``."""
    if first_chunk_timeout is None:
        return await _prime_async(result, key)
    response = streamed_response(result)
    if response is None:
        return result
    assert clock is not None, "first_chunk_timeout needs the manager's clock"
    assert sleep is not None, "first_chunk_timeout needs the manager's sleep"
    return await _within(
        _prime_async(result, key),
        first_chunk_timeout - (clock() - sent),
        sleep,
        lambda: response.request,
        key,
        first_chunk_timeout,
        on_timeout=lambda: _aclose(response, None),
    )


async def send_and_prime_async(
    send: Awaitable[T],
    *,
    key: str,
    request: Callable[[], Any],
    first_chunk_timeout: float | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[object]] | None = None,
) -> T:
    """Await an async streamed attempt (``send``: the SDK's coroutine) and prime its result.

    ``request`` makes the request object of a timeout raised before any response existed.
    With ``first_chunk_timeout``, the limit covers both the wait for the response headers and the
    wait for the first chunk, measured from now on the injected clock and raced on ``sleep``.
    """
    if first_chunk_timeout is None:
        return await _prime_async(await send, key)
    assert clock is not None, "first_chunk_timeout needs the manager's clock"
    assert sleep is not None, "first_chunk_timeout needs the manager's sleep"

    async def attempt() -> T:
        return await _prime_async(await send, key)

    return await _within(
        attempt(),
        first_chunk_timeout,
        sleep,
        request,
        key,
        first_chunk_timeout,
    )


async def _within(
    work: Awaitable[T],
    seconds: float,
    sleep: Callable[[float], Awaitable[object]],
    request: Callable[[], Any],
    key: str,
    limit: float,
    on_timeout: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """``await work``, unless ``sleep(seconds)`` ends first: then cancel it and time out."""
    if seconds <= 0:
        close = getattr(work, "close", None)
        if close is not None:
            close()  # never started
        if on_timeout is not None:
            await on_timeout()
        raise _timeout(request(), key, limit)
    outcome: list[T] = []
    failure: list[Exception] = []
    timed_out = False
    async with anyio.create_task_group() as group:

        async def watchdog() -> None:
            nonlocal timed_out
            await sleep(seconds)
            timed_out = True
            group.cancel_scope.cancel()

        group.start_soon(watchdog)
        try:
            outcome.append(await work)
        except Exception as exc:  # re-raised below, outside the task group
            failure.append(exc)
        group.cancel_scope.cancel()
    if outcome:
        return outcome[0]
    if failure:
        raise failure[0]
    assert timed_out
    if on_timeout is not None:
        await on_timeout()
    raise _timeout(request(), key, limit)
