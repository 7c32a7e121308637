"""SPEC 4.9: priming a streamed attempt (notdiamond._streams), through the real SDK, both majors.

These tests prime the SDK's own results directly (an unmanaged client, ``max_retries=0``); the
tests of the whole call (retry, fallback, the caller's view) are in the second half of the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import math
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import notdiamond
from notdiamond._policy import is_transient
from notdiamond._streams import (
    first_event_data,
    named_status,
    prime_async,
    prime_sync,
    send_and_prime_async,
)
from tests.fakes import (
    DONE_EVENT,
    USER,
    FakeProvider,
    H,
    ScriptedBody,
    SleepRecorder,
    chunk_event,
    error_event,
    sse,
)

KEY = "openai/gpt-4o"


def _open(fake: FakeProvider, *replies: Any) -> Any:
    """A plain (unmanaged) client's ``create(stream=True)`` result for the scripted replies."""
    fake.script(KEY, *replies)
    client = fake.openai(max_retries=0)
    return client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)


def _text(stream: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream)


# -- the first event ----------------------------------------------------------------------------


def test_first_event_data_across_reads_and_line_endings() -> None:
    assert first_event_data(b"data: {") is None
    assert first_event_data(b"data: {}\n") is None
    assert first_event_data(b"data: {}\n\n") == "{}"
    assert first_event_data(b": keep-alive\n\ndata: a\r\ndata: b\r\n\r\ndata: c\n\n") == "a\nb"
    assert first_event_data(b"data:x\r\r") == "x"
    assert first_event_data(b"\n\nevent: ping\n\n") == ""  # an event without data still dispatches
    assert first_event_data(b"id: 1\n\n") is None  # nothing the SDK would dispatch as a chunk


def test_named_status() -> None:
    assert named_status({"code": 503, "message": "x"}) == 503
    assert named_status({"status": "429"}) == 429
    assert named_status({"type": "server_error", "code": None}) == 500
    assert named_status({"code": "rate_limit_exceeded", "type": "requests"}) == 429
    assert named_status({"type": "invalid_request_error"}) == 400
    assert named_status({"code": True, "type": "mystery"}) is None
    assert named_status("boom") is None


# -- sync priming -------------------------------------------------------------------------------


def test_a_healthy_stream_is_the_same_object_read_whole(fake: FakeProvider) -> None:
    bodies: list[ScriptedBody] = []
    stream = _open(fake, sse(("Hel", "lo", "!"), bodies=bodies))
    primed = prime_sync(stream, key=KEY)
    assert primed is stream
    assert isinstance(primed, openai.Stream)
    assert bodies[0].delivered == 1  # only the first event was read inside the attempt
    assert _text(primed) == "Hello!"
    assert bodies[0].delivered == 5  # 3 chunks, the final one, [DONE]


@pytest.mark.parametrize(
    "reply",
    [
        sse((), done=False),  # empty body
        sse((), first=DONE_EVENT, done=False),  # [DONE] before any chunk
        sse(cut_before=0),  # connection dropped before the first event
    ],
    ids=["empty", "done-first", "broken"],
)
def test_ending_or_breaking_before_the_first_chunk_is_a_connection_error(
    fake: FakeProvider, reply: Any
) -> None:
    bodies: list[ScriptedBody] = []
    stream = _open(fake, lambda request: _track(reply(request), bodies))
    with pytest.raises(openai.APIConnectionError) as caught:
        prime_sync(stream, key=KEY)
    assert type(caught.value) is openai.APIConnectionError
    assert is_transient(caught.value)
    assert KEY in str(caught.value)
    assert bodies[0].closed  # the connection was released


def _track(response: Any, bodies: list[ScriptedBody]) -> Any:
    bodies.append(response.stream)
    return response


@pytest.mark.parametrize(
    ("error", "expected", "transient"),
    [
        ({"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}, 429, True),
        ({"message": "oops", "type": "server_error", "code": None}, 500, True),
        ({"message": "busy", "code": 503}, 503, True),
        ({"message": "bad", "type": "invalid_request_error"}, 400, False),
    ],
)
def test_an_error_event_before_the_first_chunk_is_the_status_it_names(
    fake: FakeProvider, error: dict[str, Any], expected: int, transient: bool
) -> None:
    stream = _open(fake, sse(first=error_event(error)))
    with pytest.raises(openai.APIStatusError) as caught:
        prime_sync(stream, key=KEY)
    exc = caught.value
    assert exc.status_code == expected
    assert exc.message == error["message"]
    assert is_transient(exc) is transient
    assert type(exc) is type(
        openai.OpenAI(api_key="x")._make_status_error("m", body=None, response=exc.response)
    )


def test_an_error_event_naming_no_status_is_a_plain_api_error(fake: FakeProvider) -> None:
    stream = _open(fake, sse(first=error_event({"message": "strange", "type": "mystery"})))
    with pytest.raises(openai.APIError) as caught:
        prime_sync(stream, key=KEY)
    assert not isinstance(caught.value, (openai.APIStatusError, openai.APIConnectionError))
    assert not is_transient(caught.value)


def test_a_break_after_the_first_chunk_is_the_sdks_error_naming_model_and_count(
    fake: FakeProvider,
) -> None:
    stream = prime_sync(_open(fake, sse(("a", "b", "c"), cut_before=2)), key=KEY)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        got.extend(chunk.choices[0].delta.content for chunk in stream)
    assert got == ["a", "b"]  # what arrived, nothing replayed
    assert "the stream of openai/gpt-4o broke after 2 chunks; not replayed" in str(caught.value)
    assert "RemoteProtocolError" in type(caught.value.__cause__).__name__


def test_streaming_and_raw_responses_are_primed_and_read_whole(fake: FakeProvider) -> None:
    fake.script(KEY, sse(("x", "y")), sse(("p", "q")), sse(cut_before=0))
    client = fake.openai(max_retries=0)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=USER, stream=True
    ) as response:
        assert prime_sync(response, key=KEY) is response
        lines = [line for line in response.iter_lines() if line]
        assert len(lines) == 4
        assert lines[-1] == "data: [DONE]"
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER, stream=True
    )
    assert _text(prime_sync(raw, key=KEY).parse()) == "pq"
    with (
        client.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=USER, stream=True
        ) as response,
        pytest.raises(openai.APIConnectionError),
    ):
        prime_sync(response, key=KEY)


def test_a_non_streamed_result_is_left_alone(fake: FakeProvider) -> None:
    done = fake.openai().chat.completions.create(model="gpt-4o", messages=USER)
    assert prime_sync(done, key=KEY) is done


def test_first_chunk_timeout_sync_on_the_injected_clock(fake: FakeProvider) -> None:
    clock = SleepRecorder()
    late = _open(fake, sse(stall=5.0, advance=clock))
    with pytest.raises(openai.APITimeoutError) as caught:
        prime_sync(late, key=KEY, sent=0.0, first_chunk_timeout=2.0, clock=clock.clock)
    assert is_transient(caught.value)
    assert clock.now == 5.0
    in_time = _open(fake, sse(stall=1.5, advance=clock))
    sent = clock.now
    assert _text(
        prime_sync(in_time, key=KEY, sent=sent, first_chunk_timeout=2.0, clock=clock.clock)
    )
    # the headers alone arrived too late: no body read at all
    bodies: list[ScriptedBody] = []
    slow_headers = _open(fake, sse(bodies=bodies))
    with pytest.raises(openai.APITimeoutError):
        prime_sync(
            slow_headers, key=KEY, sent=clock.now - 3.0, first_chunk_timeout=2.0, clock=clock.clock
        )
    assert bodies[0].delivered == 0


# -- sync first-chunk timeout over a real socket --------------------------------------------------


class _StallingHandler(http.server.BaseHTTPRequestHandler):
    """An SSE answer over a real socket: headers after ``header_stall`` s, the first event after
    ``stall`` more seconds, the next one after ``gap`` more seconds, then ``[DONE]``."""

    protocol_version = "HTTP/1.1"
    header_stall = 0.0
    stall = 0.0
    gap = 0.0
    release = threading.Event()

    def _event(self, event: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.flush()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.release.wait(self.header_stall)
        with contextlib.suppress(OSError):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            self.release.wait(self.stall)
            self._event(chunk_event("m", "late"))
            self.release.wait(self.gap)
            self._event(chunk_event("m", "r"))
            self._event(DONE_EVENT)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _stalling_server(stall: float, header_stall: float = 0.0, gap: float = 0.0) -> Iterator[str]:
    handler = type(
        "Handler",
        (_StallingHandler,),
        {"stall": stall, "header_stall": header_stall, "gap": gap, "release": threading.Event()},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("stall", [30.0, 0.05])
def test_first_chunk_timeout_sync_cuts_a_stalled_socket(stall: float) -> None:
    _text(_open(FakeProvider(), sse()))  # the SDK's first-call imports, outside the timing
    with _stalling_server(stall) as url:
        client = openai.OpenAI(api_key="x", base_url=url, max_retries=0)
        sent = time.monotonic()
        stream = client.chat.completions.create(model="m", messages=USER, stream=True)
        if stall > 1:
            with pytest.raises(openai.APITimeoutError) as caught:
                prime_sync(
                    stream, key=KEY, sent=sent, first_chunk_timeout=1.0, clock=time.monotonic
                )
            elapsed = time.monotonic() - sent
            assert 1.0 <= elapsed < 10.0  # cut at the limit, not after the 30 s stall
            # the socket was shut down under the blocked read, which failed at once
            assert isinstance(caught.value.__cause__, Exception)
        else:
            primed = prime_sync(
                stream, key=KEY, sent=sent, first_chunk_timeout=2.0, clock=time.monotonic
            )
            assert _text(primed) == "later"
            time.sleep(0.05)  # the disarmed timer never touches the socket of a healthy stream
        client.close()


# -- async priming (virtual time: looptime) ------------------------------------------------------


async def _aopen(fake: FakeProvider, *replies: Any) -> Any:
    fake.script(KEY, *replies)
    client = fake.async_openai(max_retries=0)
    return await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)


async def _acollect(stream: Any, got: list[str]) -> None:
    async for chunk in stream:
        got.append(chunk.choices[0].delta.content)


async def _atext(stream: Any) -> str:
    return "".join([c.choices[0].delta.content or "" async for c in stream])


@pytest.mark.asyncio
async def test_async_healthy_and_failing_first_chunks(fake: FakeProvider) -> None:
    bodies: list[ScriptedBody] = []
    stream = await _aopen(fake, sse(("Hel", "lo"), bodies=bodies))
    assert await prime_async(stream, key=KEY) is stream
    assert isinstance(stream, openai.AsyncStream)
    assert bodies[0].delivered == 1
    assert await _atext(stream) == "Hello"

    broken = await _aopen(fake, sse(cut_before=0, bodies=bodies))
    with pytest.raises(openai.APIConnectionError) as caught:
        await prime_async(broken, key=KEY)
    assert type(caught.value) is openai.APIConnectionError
    assert bodies[1].closed

    limited = await _aopen(fake, sse(first=error_event({"message": "later", "code": 429})))
    with pytest.raises(openai.RateLimitError):
        await prime_async(limited, key=KEY)

    cut = await prime_async(await _aopen(fake, sse(("a", "b", "c"), cut_before=1)), key=KEY)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError, match="broke after 1 chunk; not replayed"):
        await _acollect(cut, got)
    assert got == ["a"]


@pytest.mark.asyncio
async def test_async_streaming_response_is_primed(fake: FakeProvider) -> None:
    fake.script(KEY, sse(("x", "y")))
    client = fake.async_openai(max_retries=0)
    async with client.chat.completions.with_streaming_response.create(
        model="gpt-4o", messages=USER, stream=True
    ) as response:
        assert await prime_async(response, key=KEY) is response
        assert await _atext(await response.parse()) == "xy"


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_async_first_chunk_timeout_in_virtual_time(fake: FakeProvider) -> None:
    loop = asyncio.get_running_loop()
    bodies: list[ScriptedBody] = []
    start = loop.time()
    stalled = await _aopen(fake, sse(stall=30.0, bodies=bodies))
    with pytest.raises(openai.APITimeoutError) as caught:
        await prime_async(
            stalled,
            key=KEY,
            sent=start,
            first_chunk_timeout=2.0,
            clock=loop.time,
            sleep=asyncio.sleep,
        )
    assert loop.time() - start == pytest.approx(2.0)  # at the limit, not after the stall
    assert any("within 2s of sending the attempt" in note for note in caught.value.__notes__)
    assert bodies[0].closed
    assert bodies[0].delivered == 0

    start = loop.time()
    in_time = await _aopen(fake, sse(stall=1.5))
    primed = await prime_async(
        in_time, key=KEY, sent=start, first_chunk_timeout=2.0, clock=loop.time, sleep=asyncio.sleep
    )
    assert await _atext(primed) == "Hello"
    assert loop.time() - start == pytest.approx(1.5)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_async_first_chunk_timeout_covers_the_wait_for_headers(fake: FakeProvider) -> None:
    loop = asyncio.get_running_loop()
    client = fake.async_openai(max_retries=0)

    async def slow_headers(request: Any) -> Any:
        await asyncio.sleep(5.0)
        return sse()(request)

    handle = fake.handle_async

    async def handler(request: Any) -> Any:
        await request.aread()
        if len(fake.sent) == 0:
            fake.handle(request)  # recorded; answered late below
            return await slow_headers(request)
        return await handle(request)

    client._client._transport.handler = handler  # type: ignore[attr-defined]
    start = loop.time()
    with pytest.raises(openai.APITimeoutError):
        await send_and_prime_async(
            client.chat.completions.create(model="gpt-4o", messages=USER, stream=True),
            key=KEY,
            request=lambda: None,
            first_chunk_timeout=2.0,
            clock=loop.time,
            sleep=asyncio.sleep,
        )
    assert loop.time() - start == pytest.approx(2.0)
    result = await send_and_prime_async(
        client.chat.completions.create(model="gpt-4o", messages=USER, stream=True),
        key=KEY,
        request=lambda: None,
        first_chunk_timeout=2.0,
        clock=loop.time,
        sleep=asyncio.sleep,
    )
    assert await _atext(result) == "hi"


# -- whole calls through notdiamond.init -----------------------------------------------------------

TWO = ["openai/gpt-4o", "azure/gpt-4o"]


def test_a_break_before_the_first_chunk_is_retried_and_the_caller_gets_a_whole_stream(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client, azure = fake.openai(), fake.azure()
    events: list[Any] = []
    notdiamond.init(
        [client, azure], models=TWO, max_retries=2, sleep=sleeps, observer=events.append
    )
    fake.script(KEY, sse(cut_before=0), sse(("a", "b", "c")))
    stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert isinstance(stream, openai.Stream)
    assert _text(stream) == "abc"
    assert fake.keys() == [KEY, KEY]
    assert sleeps.waits == [2.0]  # the policy's wait after a transient failure
    assert [e.decision for e in events] == ["retry", "success"]
    assert type(events[0].error) is openai.APIConnectionError


@pytest.mark.parametrize(
    ("first", "keys"),
    [
        (error_event({"message": "slow down", "code": 429}), [KEY, KEY]),  # transient: retried
        (error_event({"message": "bad", "type": "invalid_request_error"}), [KEY, "azure/gpt-4o"]),
        (DONE_EVENT, [KEY, KEY]),  # an empty stream: a connection error, retried
    ],
    ids=["429-event", "400-event", "done-first"],
)
def test_first_events_follow_the_policy(
    fake: FakeProvider, sleeps: SleepRecorder, first: bytes, keys: list[str]
) -> None:
    client, azure = fake.openai(), fake.azure()
    notdiamond.init([client, azure], models=TWO, max_retries=2, sleep=sleeps)
    fake.script(KEY, sse(("x",), first=first))
    stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert _text(stream) == "hi"  # the answering model's stream, whole
    assert fake.keys() == keys


def test_every_stream_path_falls_back_before_the_first_chunk(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client, azure = fake.openai(), fake.azure()
    notdiamond.init([client, azure], models=TWO, sleep=sleeps)
    fake.always(KEY, sse(cut_before=0), n=3)
    fake.always("azure/gpt-4o", sse(("p", "q")), n=3)
    with client.chat.completions.stream(model="notdiamond", messages=USER) as helper:
        assert helper.get_final_completion().choices[0].message.content == "pq"
    with client.chat.completions.with_streaming_response.create(
        model="notdiamond", messages=USER, stream=True
    ) as response:
        assert _text(response.parse()) == "pq"
    raw = client.chat.completions.with_raw_response.create(
        model="notdiamond", messages=USER, stream=True
    )
    assert _text(raw.parse()) == "pq"
    assert fake.keys() == [KEY, "azure/gpt-4o"] * 3


def test_a_break_after_the_first_chunk_reaches_the_caller_and_is_never_replayed(
    fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    client, azure = fake.openai(), fake.azure()
    notdiamond.init([client, azure], models=TWO, max_retries=3, sleep=sleeps)
    fake.script(KEY, sse(("a", "b", "c"), cut_before=1))
    stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError, match="openai/gpt-4o broke after 1 chunk"):
        got.extend(c.choices[0].delta.content for c in stream)
    assert got == ["a"]
    assert fake.keys() == [KEY]  # no retry, no fallback once the caller had a chunk


def test_first_chunk_timeout_per_model_sync(fake: FakeProvider, sleeps: SleepRecorder) -> None:
    client, azure = fake.openai(), fake.azure()
    notdiamond.init(
        [client, azure],
        models=TWO,
        sleep=sleeps,
        clock=sleeps.clock,
        first_chunk_timeout={KEY: 2.0, "azure/gpt-4o": None},
    )
    fake.script(KEY, sse(stall=5.0, advance=sleeps))
    fake.script("azure/gpt-4o", sse(("slow", "ok"), stall=9.0, advance=sleeps))
    stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert _text(stream) == "slowok"  # azure has no first-chunk limit: its 9 s stall is fine
    assert fake.keys() == [KEY, "azure/gpt-4o"]


def test_first_chunk_timeout_is_validated_at_init(fake: FakeProvider) -> None:
    client = fake.openai()
    for bad, error in [(0, ValueError), (-1.0, ValueError), ("5", TypeError), (True, TypeError)]:
        with pytest.raises(error, match="first_chunk_timeout"):
            notdiamond.init(client, models=[KEY], first_chunk_timeout=bad)  # type: ignore[arg-type]
        assert type(client) is openai.OpenAI  # nothing patched on refusal
    with pytest.raises(ValueError, match=r"first_chunk_timeout\['openai/gpt-4o'\]"):
        notdiamond.init(client, models=[KEY], first_chunk_timeout={KEY: math.inf})


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_async_stall_falls_back_at_the_first_chunk_timeout(fake: FakeProvider) -> None:
    loop = asyncio.get_running_loop()
    client, azure = fake.async_openai(), fake.async_azure()
    notdiamond.init(
        [client, azure], models=TWO, clock=loop.time, first_chunk_timeout=2.0, timeout=60.0
    )
    bodies: list[ScriptedBody] = []
    fake.script(KEY, sse(stall=30.0, bodies=bodies))
    fake.script("azure/gpt-4o", sse(("a", "b"), stall=1.0))
    start = loop.time()
    stream = await client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert loop.time() - start == pytest.approx(3.0)  # 2 s limit on openai, then azure's 1 s
    assert await _atext(stream) == "ab"
    assert fake.keys() == [KEY, "azure/gpt-4o"]
    assert bodies[0].closed  # the stalled connection was released


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_async_breaks_before_and_after_the_first_chunk(fake: FakeProvider) -> None:
    client, azure = fake.async_openai(), fake.async_azure()
    notdiamond.init([client, azure], models=TWO)
    fake.script(KEY, sse(cut_before=0), sse(("a", "b"), cut_before=1))
    fake.script("azure/gpt-4o", sse(("x", "y")))
    stream = await client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert await _atext(stream) == "xy"
    async with client.chat.completions.stream(model="openai/gpt-4o", messages=USER) as helper:
        got: list[str] = []
        with pytest.raises(openai.APIConnectionError, match="broke after 1 chunk"):
            await _acollect_events(helper, got)
    assert fake.keys() == [KEY, "azure/gpt-4o", KEY]


async def _acollect_events(helper: Any, got: list[str]) -> None:
    async for event in helper:
        if event.type == "content.delta":
            got.append(event.delta)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_deadline_covers_the_wait_for_the_first_chunk(fake: FakeProvider) -> None:
    loop = asyncio.get_running_loop()
    client = fake.async_openai()
    notdiamond.init(client, models=[KEY], clock=loop.time, deadline=5.0, timeout=60.0)

    def headers_then_stall(request: Any) -> Any:
        response = sse(stall=30.0)(request)
        request.extensions["timeout"] = {"read": None}  # the body alone would wait 30 s
        return response

    fake.script(KEY, headers_then_stall)
    start = loop.time()
    with pytest.raises(notdiamond.DeadlineExceeded):
        await client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert loop.time() - start == pytest.approx(5.0)


class _LongBody(H.SyncByteStream):  # type: ignore[misc]
    """``n`` chunk events made on the fly, then ``[DONE]``: the fake itself holds none of them."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[bytes]:
        for i in range(self.n):
            yield chunk_event("gpt-4o", f"t{i} " + "x" * 2000)
        yield DONE_EVENT


def test_memory_stays_flat_over_a_long_primed_stream(fake: FakeProvider) -> None:
    n = 400  # about 0.8 MB of events
    stream = prime_sync(_open(fake, lambda request: H.Response(200, stream=_LongBody(n))), key=KEY)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        received = sum(1 for _ in stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == n
    assert peak < 200_000, peak  # holding the events read so far would take 0.8 MB


def test_a_compressed_stream_is_primed_by_its_first_bytes(fake: FakeProvider) -> None:
    events = [chunk_event("gpt-4o", c) for c in ("zip", "ped")] + [DONE_EVENT]
    packer = zlib.compressobj(wbits=31)  # gzip
    parts = [packer.compress(e) + packer.flush(zlib.Z_SYNC_FLUSH) for e in events]
    parts.append(packer.flush())
    bodies: list[ScriptedBody] = []

    def gzipped(cut_before: int | None) -> Any:
        def reply(request: Any) -> Any:
            body = ScriptedBody(request, parts, cut_before=cut_before, stall=0.0, advance=None)
            bodies.append(body)
            headers = {"content-type": "text/event-stream", "content-encoding": "gzip"}
            return H.Response(200, headers=headers, stream=body)

        return reply

    stream = prime_sync(_open(fake, gzipped(None)), key=KEY)
    assert bodies[0].delivered == 1  # not the whole body
    assert _text(stream) == "zipped"
    with pytest.raises(openai.APIConnectionError):  # a break before the first bytes
        prime_sync(_open(fake, gzipped(0)), key=KEY)


def test_sync_first_chunk_timeout_bounds_the_header_wait(fake: FakeProvider) -> None:
    """Headers after 30 s: cut at the limit by the read timeout of the headers' wait, then fallback
    (that the body's reads get the attempt's own timeout back: the healthy case below)."""
    _text(_open(FakeProvider(), sse()))  # the SDK's first-call imports, outside the timing
    with _stalling_server(0.0, header_stall=30.0) as url:
        primary = openai.OpenAI(api_key="x", base_url=url)
        notdiamond.init([primary, fake.azure()], models=TWO, first_chunk_timeout=0.5)
        start = time.monotonic()
        stream = primary.chat.completions.create(model="notdiamond", messages=USER, stream=True)
        assert _text(stream) == "hi"
        assert 0.5 <= time.monotonic() - start < 10.0  # not after the 30 s stall
        assert fake.keys() == ["azure/gpt-4o"]
        primary.close()


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_async_cancellation_while_waiting_for_the_first_chunk(fake: FakeProvider) -> None:
    client, azure = fake.async_openai(), fake.async_azure()
    notdiamond.init([client, azure], models=TWO, first_chunk_timeout=10.0)
    bodies: list[ScriptedBody] = []
    fake.script(KEY, sse(stall=30.0, bodies=bodies))
    task = asyncio.create_task(
        client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    )
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bodies[0].closed  # the connection was released
    await asyncio.sleep(60.0)
    assert fake.keys() == [KEY]  # no fallback after a cancellation


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_async_streaming_response_falls_back_before_the_first_chunk(
    fake: FakeProvider,
) -> None:
    client, azure = fake.async_openai(), fake.async_azure()
    notdiamond.init([client, azure], models=TWO)
    fake.script(KEY, sse(first=error_event({"message": "down", "type": "server_error"})))
    fake.script("azure/gpt-4o", sse(("u", "v")))
    async with client.chat.completions.with_streaming_response.create(
        model="notdiamond", messages=USER, stream=True
    ) as response:
        assert await _atext(await response.parse()) == "uv"
    assert fake.keys() == [KEY, "azure/gpt-4o"]


@pytest.mark.parametrize("stalled", [True, False], ids=["stalled", "healthy"])
def test_sync_watchdogs_under_many_threads(fake: FakeProvider, stalled: bool) -> None:
    _text(_open(FakeProvider(), sse()))  # the SDK's first-call imports, outside the timing
    with _stalling_server(30.0 if stalled else 0.0, gap=0.0 if stalled else 0.8) as url:
        primary = openai.OpenAI(api_key="x", base_url=url)
        notdiamond.init([primary, fake.azure()], models=TWO, first_chunk_timeout=0.5)
        texts: list[str] = []

        def call() -> None:
            stream = primary.chat.completions.create(model="notdiamond", messages=USER, stream=True)
            texts.append(_text(stream))

        threads = [threading.Thread(target=call) for _ in range(6)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10.0)
        assert time.monotonic() - start < 10.0  # healthy: 0.8 s; stalled: 0.5 s each, not 30 s
        # stalled: every call fell back after its own 0.5 s; healthy: the 0.8 s gap after the
        # first chunk trips neither a (disarmed) watchdog nor the read timeout of the header wait
        assert texts == (["hi"] * 6 if stalled else ["later"] * 6)
        assert fake.keys() == (["azure/gpt-4o"] * 6 if stalled else [])
        primary.close()


def test_closing_a_primed_stream_unread_releases_the_connection(fake: FakeProvider) -> None:
    bodies: list[ScriptedBody] = []
    stream = prime_sync(_open(fake, sse(("a", "b"), bodies=bodies)), key=KEY)
    stream.close()
    assert bodies[0].closed
    assert bodies[0].delivered == 1


@pytest.mark.asyncio
async def test_closing_a_primed_async_stream_unread_releases_the_connection(
    fake: FakeProvider,
) -> None:
    bodies: list[ScriptedBody] = []
    stream = await prime_async(await _aopen(fake, sse(("a", "b"), bodies=bodies)), key=KEY)
    await stream.close()
    assert bodies[0].closed
    assert bodies[0].delivered == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", openai.APIConnectionError),
        (DONE_EVENT, openai.APIConnectionError),
        (error_event({"message": "busy", "code": 503}), openai.InternalServerError),
    ],
    ids=["empty", "done-first", "503-event"],
)
def test_a_body_loaded_whole_by_a_mock_is_judged_the_same_way(
    fake: FakeProvider, sleeps: SleepRecorder, body: bytes, expected: type[Exception]
) -> None:
    def in_memory(request: Any) -> Any:
        return H.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    with pytest.raises(expected):
        prime_sync(_open(fake, in_memory), key=KEY)
    client, azure = fake.openai(), fake.azure()
    notdiamond.init([client, azure], models=TWO, sleep=sleeps)
    fake.script(KEY, in_memory)
    stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
    assert _text(stream) == "hi"  # fell back: azure's stream (loaded whole too) is fine
    assert fake.keys()[-2:] == [KEY, "azure/gpt-4o"]
