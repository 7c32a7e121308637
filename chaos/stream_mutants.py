"""Broken stream runtimes (SPEC 4.9): the stream checks must catch each.

Seams: ``notdiamond._pipeline.prime_sync`` and ``notdiamond._pipeline.send_and_prime_async``, the
two functions through which the drivers (and the hedged driver, via ``primed_async``) make the
first chunk part of a streamed attempt. Each mutant swaps them for a ``with`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Iterator
from typing import Any

from .checks.stream_first_chunk import _stream_fault_rate
from .monkeypatch import swapped
from .scenario import Scenario
from .stream_faults import BEFORE_FIRST_CHUNK


@contextlib.contextmanager
def _first_chunk_not_awaited() -> Iterator[dict[str, Any]]:
    """A streamed attempt succeeds with its response headers: nothing waits for the first chunk,
    so a stall, a break or an error event before it reaches the caller."""
    from notdiamond import _pipeline

    def unprimed(result: Any, **_: Any) -> Any:
        return result

    async def sent_only(send: Awaitable[Any], **_: Any) -> Any:
        return await send

    with (
        swapped(_pipeline, "prime_sync", unprimed),
        swapped(_pipeline, "send_and_prime_async", sent_only),
    ):
        yield {}


@contextlib.contextmanager
def _replay_after_first_chunk() -> Iterator[dict[str, Any]]:
    """The whole stream is read inside the attempt: a break after the first chunk fails the
    attempt, which the policy then retries (the call is replayed after its caller could have
    read part of the answer)."""
    from notdiamond import _pipeline
    from notdiamond._sdk import http_module_of, streamed_response

    prime = getattr(_pipeline, "prime_sync")  # noqa: B009 (not re-exported)
    prime_async = getattr(_pipeline, "send_and_prime_async")  # noqa: B009

    def whole(result: Any) -> tuple[Any, Any]:
        response = streamed_response(result)
        return response, None if response is None else http_module_of(response)

    def buffered(result: Any, **kw: Any) -> Any:
        result = prime(result, **kw)
        response, http = whole(result)
        if response is not None:
            body = b"".join(response.stream)  # a break raises the SDK's connection error here
            response.stream = http.ByteStream(body)
        return result

    async def buffered_async(send: Awaitable[Any], **kw: Any) -> Any:
        result = await prime_async(send, **kw)
        response, http = whole(result)
        if response is not None:
            body = b"".join([chunk async for chunk in response.stream])
            response.stream = http.ByteStream(body)
        return result

    with (
        swapped(_pipeline, "prime_sync", buffered),
        swapped(_pipeline, "send_and_prime_async", buffered_async),
    ):
        yield {}


def _fails_before_first_chunk(scenario: Scenario) -> float:
    return _stream_fault_rate(scenario, BEFORE_FIRST_CHUNK)


def _breaks_after_first_chunk(scenario: Scenario) -> float:
    return _stream_fault_rate(scenario, frozenset({"break_after"}))


def stream_mutants() -> list[Any]:
    """The stream mutants, one per broken behaviour and client kind (sync, async)."""
    from .mutants import Mutant

    out = []
    for suffix, scenario in (("", "streams-first-chunk"), ("_async", "streams-first-chunk-async")):
        out += [
            Mutant(
                "first_chunk_not_awaited" + suffix,
                "a streamed attempt succeeds at its headers: a stall, break or error event before "
                "the first chunk reaches the caller",
                scenario,
                "stream_first_chunk",
                _first_chunk_not_awaited,
                exercised=_fails_before_first_chunk,
            ),
            Mutant(
                "replay_after_first_chunk" + suffix,
                "the stream read whole inside the attempt: a break after the first chunk is "
                "retried (replayed)",
                scenario,
                "stream_break_after_first",
                _replay_after_first_chunk,
                exercised=_breaks_after_first_chunk,
            ),
        ]
    return out
