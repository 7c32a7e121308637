"""Hedged requests (``hedge=notdiamond.Hedge(...)``, async clients): the tail-latency remedy.

When an attempt has produced no response after ``delay`` seconds, the call starts an attempt on the
next model (the fallback choice, SPEC 4.5) in parallel, up to ``max_extra`` extra attempts at once.
The first answer wins; the other attempts are cancelled (their HTTP requests and connections
closed). Each line of attempts ("lane") keeps its own model's same-model retries (SPEC 4.3/4.4);
a lane whose model is given up moves to the next fallback model in its own slot, or ends quietly
when none is left while another lane still runs. The call raises only when no lane is left.

Every decision is still :class:`~notdiamond._call.CallState`'s: each lane is one (sharing the call's
identity, deadline and failures), so strategies, logs and the observer see every attempt, each
reported from its lane's own task (strategies and tracing keep per-attempt context there). Events
come in time order: the first answer settles the race at once and reports ``success``; the attempts
it cancels then report ``hedge``. For a stream, the response is its first chunk (SPEC 4.9). All
time comes from the manager's injected clock and sleep; the driver is anyio code (asyncio, trio).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import anyio

from ._call import CallState
from ._pipeline import current_call, primed_async
from ._sdk import streamed_response

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectSendStream

    from ._events import Decision
    from ._hedge_options import Hedging

logger = logging.getLogger("notdiamond")


# -- the hedged driver ---------------------------------------------------------------------------

#: A lane's report to the race: ``("answered", lane, result)``, ``("ended", lane, error)``
#: (the last lane standing failed: the call's error), ``("slow", lane, attempt id)``.
_Report = tuple[str, "HedgeLane", Any]


class HedgeLane(CallState):
    """One line of attempts of a hedged call: one model at a time, its own retries."""

    __slots__ = ("attempt_id", "race")

    race: _Race
    #: The id of the attempt in flight (unique in the call), ``None`` between attempts.
    attempt_id: int | None

    @property
    def sent(self) -> int:
        """Attempts sent by the whole call (every lane)."""
        return self.race.sent

    @sent.setter
    def sent(self, value: int) -> None:
        self.race.sent = value

    def _untried(self) -> str | None:
        """The fallback choice, skipping the models other lanes are trying right now (none once
        another attempt has answered)."""
        if self.race.settled:
            return None
        busy = {lane.key for lane in self.race.running if lane is not self}
        return self.pipeline.next_model(self.failed.union(busy))

    def _nothing_left(self) -> Decision:
        return "hedge" if self.race.others_running(self) else "raise"

    def overtaken(self, answered: bool) -> None:
        """This attempt lost: cancelled when another answered first (or answered too late)."""
        pipeline = self.pipeline
        if answered:  # the model is healthy all the same
            if pipeline.attempt_succeeded_by:
                now = pipeline.clock()
                for strategy in pipeline.attempt_succeeded_by:
                    strategy.attempt_succeeded(self, self.key, now)
        else:
            for strategy in pipeline.attempt_abandoned_by:
                strategy.attempt_abandoned(self, self.key)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "notdiamond: %s attempt %d %s; another attempt answered first",
                self.key,
                self.attempt,
                "answered too late" if answered else "cancelled",
            )
        if pipeline.observer is not None:
            self._emit("hedge", None, None)


def _new_lane(call: CallState, race: _Race, key: str) -> HedgeLane:
    lane = HedgeLane.__new__(HedgeLane)
    call.branch(lane, key)
    lane.race = race
    lane.attempt_id = None
    return lane


class _Race:
    """The lanes of one hedged call and the task group they run in."""

    def __init__(self, call: CallState, hedging: Hedging) -> None:
        self.call = call
        self.pipeline = call.pipeline
        self.hedging = hedging
        self.sent = call.sent if call.tracked else 0
        #: Lanes holding a slot (an attempt in flight or a wait before a retry), in start order.
        self.running: list[HedgeLane] = []
        #: Set once the call's outcome is known: lanes cancelled from then on lost the race.
        self.settled = False
        self._tg: TaskGroup | None = None
        self._outbox: MemoryObjectSendStream[_Report] | None = None

    def others_running(self, lane: HedgeLane) -> bool:
        return any(other is not lane for other in self.running)

    async def run(self) -> Any:
        call = self.call
        first = _new_lane(call, self, call.key)
        first.probing = call.probing
        send, receive = anyio.create_memory_object_stream[_Report](math.inf)
        answer: Any = None
        error: BaseException | None = None
        with send, receive:
            self._outbox = send
            try:
                async with anyio.create_task_group() as tg:
                    self._tg = tg
                    self._start(first)
                    while True:
                        kind, lane, value = await receive.receive()
                        if kind == "answered":
                            answer = value
                            break
                        if kind == "ended":
                            error = value
                            break
                        try:  # "slow"
                            self._hedge(lane, value)
                        except Exception as exc:  # a strategy's own error, as unhedged
                            error = exc
                            break
                    self.settled = True  # the other lanes lost: their attempts are cancelled
                    tg.cancel_scope.cancel()
            except BaseException:
                # The caller cancelled: an answer not yet taken is closed, not leaked.
                with anyio.CancelScope(shield=True):
                    while True:
                        try:
                            kind, lane, value = receive.receive_nowait()
                        except anyio.WouldBlock:
                            break
                        if kind == "answered":
                            await _discard(value)
                raise
            finally:
                self.running.clear()
        if error is not None:
            raise error
        return answer

    # -- lanes -------------------------------------------------------------------------------
    def _start(self, lane: HedgeLane) -> None:
        assert self._tg is not None
        self.running.append(lane)
        self._tg.start_soon(self._run_lane, lane)

    def _report(self, kind: str, lane: HedgeLane, value: Any) -> None:
        assert self._outbox is not None
        self._outbox.send_nowait((kind, lane, value))

    def _end(self, lane: HedgeLane, error: Exception | None = None) -> None:
        """``lane`` has nothing more to try: the call ends with ``error`` (default: the call's
        final error) unless another lane is still running."""
        self.running.remove(lane)
        if not self.running:
            self._report("ended", lane, lane.final_error() if error is None else error)

    async def _run_lane(self, lane: HedgeLane) -> None:
        try:
            await self._attempts(lane)
        except Exception as exc:  # a strategy's or wrapper's own error reaches the caller
            if lane in self.running:
                self.running.remove(lane)
            self._report("ended", lane, exc)

    async def _answered(self, lane: HedgeLane, result: Any) -> None:
        """The attempt of ``lane`` answered: the call's answer if it is the first one.

        Reported from the lane's own task (strategies and tracing keep per-attempt context):
        the first answer settles the race at once, so a later one knows it lost.
        """
        self.hedging.record(lane.key, self.pipeline.clock() - lane.attempt_started)
        if self.settled:
            lane.overtaken(answered=True)
            await _discard(result)
            return
        self.settled = True
        try:
            lane.succeeded()
        finally:
            self._report("answered", lane, result)

    async def _attempts(self, lane: HedgeLane) -> None:
        pipeline = self.pipeline
        while not self.settled:
            try:
                kwargs = lane.attempt_kwargs()
            except Exception as exc:  # no time left to send it (the deadline)
                self._end(lane, exc)
                return
            lane.attempt_id = attempt_id = self.sent
            timer = self._arm(lane, attempt_id)
            wrapper = pipeline.wrapper_of[lane.key]
            direct = wrapper._plain and "_default_create" not in wrapper.__dict__
            token = None if direct else current_call.set(lane)
            try:
                attempt = (
                    wrapper._send(lane, kwargs) if direct else wrapper._default_create(**kwargs)
                )
                if lane.stream:  # the first chunk is part of the attempt (SPEC 4.9)
                    attempt = primed_async(lane, attempt)
                result = await attempt
            except Exception as exc:
                failure: Exception | None = exc
            except BaseException:
                if self.settled:
                    lane.overtaken(answered=False)
                else:
                    lane.abandoned()
                raise
            else:
                failure = None
            finally:
                lane.attempt_id = None
                timer.cancel()
                if token is not None:
                    current_call.reset(token)
            if failure is None:
                await self._answered(lane, result)
                return
            wait = lane.failed_with(failure)
            if wait is None:
                self._end(lane)
                return
            if wait > 0:
                await pipeline.sleep(wait)
                if pipeline.readmit_by and not lane.waited():
                    self._end(lane)
                    return

    # -- hedges ------------------------------------------------------------------------------
    def _arm(self, lane: HedgeLane, attempt_id: int) -> anyio.CancelScope:
        """Report the attempt as slow once it has gone ``delay`` s without a response."""
        scope = anyio.CancelScope()
        if len(self.running) < self.hedging.max_in_flight:  # else no slot could take a hedge
            assert self._tg is not None
            self._tg.start_soon(self._timer, scope, lane, attempt_id)
        return scope

    async def _timer(self, scope: anyio.CancelScope, lane: HedgeLane, attempt_id: int) -> None:
        with scope:
            await self.pipeline.sleep(self.hedging.delay_for(lane.key))
            self._report("slow", lane, attempt_id)

    def _hedge(self, slow: HedgeLane, attempt_id: int) -> None:
        """Start an attempt on the next model in parallel, if the slow one is still in flight."""
        if slow.attempt_id != attempt_id or len(self.running) >= self.hedging.max_in_flight:
            return
        lane = _new_lane(self.call, self, "")
        key = lane._admitted(lane._untried(), self.pipeline.clock())
        if key is None:
            return
        lane.key = key
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "notdiamond: %s attempt %d has no response after %.3fs; hedging with %s "
                "(%d attempts in flight)",
                slow.key,
                slow.attempt,
                self.hedging.delay_for(slow.key),
                key,
                len(self.running) + 1,
            )
        self._start(lane)


async def _discard(result: Any) -> None:
    """Close the HTTP response behind a result that lost the race (a stream, a raw response)."""
    response = streamed_response(result)
    if response is not None:
        try:
            await response.aclose()
        except Exception:  # closing a loser must not fail the call
            logger.debug("notdiamond: closing a late answer failed", exc_info=True)


async def run_async_hedged(call: CallState) -> Any:
    """Run a call of an async client with hedged requests to its result or its final error."""
    hedging = call.pipeline.hedge
    assert hedging is not None, "the hedged driver runs only pipelines assembled with hedge="
    return await _Race(call, hedging).run()
