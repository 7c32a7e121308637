"""Virtual time: one discrete-event clock shared by the fake providers and the runtime.

Sync runs share a :class:`VirtualClock`: the runtime gets ``clock=vc.time`` and ``sleep=vc.sleep``,
the fake provider advances the same clock by each answer's latency. Nothing ever really sleeps.

Async runs use :class:`VirtualTimeLoop`, an asyncio event loop whose ``time()`` is virtual: when no
callback is ready it jumps straight to the next timer instead of waiting for it. Every
``asyncio.sleep``/``anyio.sleep`` (the runtime's backoff, the fake provider's latency) then takes
no wall time, in the right order. The loop is for in-process work only: it does not wait for
sockets.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualClock:
    """A clock that moves only when told to: by ``sleep`` or ``advance``."""

    __slots__ = ("now", "slept")

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        #: Total simulated seconds passed in ``sleep`` (the runtime's backoff).
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds
            self.slept += seconds

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds

    def advance_to(self, when: float) -> None:
        if when > self.now:
            self.now = when


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time: idle periods are skipped, not waited."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def _run_once(self) -> None:
        ready: Any = self._ready  # type: ignore[attr-defined]
        scheduled: list[Any] = self._scheduled  # type: ignore[attr-defined]
        if not ready:
            # Drop cancelled timers at the head (as the base loop does) so time never jumps to one.
            while scheduled and scheduled[0]._cancelled:
                handle = heapq.heappop(scheduled)
                handle._scheduled = False
                self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
            if scheduled and scheduled[0]._when > self._virtual_now:
                self._virtual_now = scheduled[0]._when
        super()._run_once()  # type: ignore[misc]


def run_virtual(coro: Coroutine[Any, Any, T]) -> tuple[T, VirtualTimeLoop]:
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop`; return (result, loop)."""
    loop = VirtualTimeLoop()
    try:
        asyncio.set_event_loop(loop)
        result = loop.run_until_complete(coro)
        loop.run_until_complete(loop.shutdown_asyncgens())
        return result, loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()
