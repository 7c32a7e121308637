"""In-process bodies of streams that stall or send an error event before their first chunk.

A stall advances the virtual clock (sync: the shared :class:`~chaos.clock.VirtualClock`; async:
an ``asyncio.sleep`` on the virtual-time loop) between the response headers and the first chunk,
so the runtime's ``first_chunk_timeout`` meets it on the same clock. An error event is the first
(and only) event of the body. Breaks before and after the first chunk are the transport's cut
streams (``cut_after`` 0 or ``k``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .faults import Outcome
from .stream_faults import error_event

_classes: dict[str, tuple[type, type]] = {}


def _make(http: Any) -> tuple[type, type]:
    class StalledStream(http.SyncByteStream):  # type: ignore[misc]
        def __init__(
            self, chunks: list[bytes], outcome: Outcome, advance: Callable[[float], None] | None
        ) -> None:
            self.chunks, self.outcome, self.advance = chunks, outcome, advance

        def __iter__(self) -> Iterator[bytes]:
            if self.outcome.stall > 0 and self.advance is not None:
                self.advance(self.outcome.stall)
            if self.outcome.error_event is not None:
                yield error_event(self.outcome.error_event)
                return
            yield from self.chunks

    class AsyncStalledStream(http.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, chunks: list[bytes], outcome: Outcome) -> None:
            self.chunks, self.outcome = chunks, outcome

        async def __aiter__(self) -> AsyncIterator[bytes]:
            if self.outcome.stall > 0:
                await asyncio.sleep(self.outcome.stall)
            if self.outcome.error_event is not None:
                yield error_event(self.outcome.error_event)
                return
            for chunk in self.chunks:
                yield chunk

    return StalledStream, AsyncStalledStream


def stalled_stream(
    http: Any,
    chunks: list[bytes],
    outcome: Outcome,
    *,
    is_async: bool,
    advance: Callable[[float], None] | None = None,
) -> Any:
    """The body of a streamed answer that stalls or sends an error event before its first chunk."""
    classes = _classes.get(http.__name__)
    if classes is None:
        classes = _classes[http.__name__] = _make(http)
    if is_async:
        return classes[1](chunks, outcome)
    return classes[0](chunks, outcome, advance)


def needs_stalled_body(outcome: Outcome) -> bool:
    return outcome.stall > 0 or outcome.error_event is not None
