"""The drivers that run a call through its pipeline (the pipeline itself is ``_assembly``).

Data flows one way: the client's hook builds a :class:`~notdiamond._call.CallState`, a driver sends
its attempts through the wrapper of each attempt's model (``wrapper._default_create(**kwargs)``),
and the call's state decides what follows each outcome, consulting the strategies. ``run_sync``
and ``run_async`` differ only in how they wait and await; the hedged async driver is in
``_hedging``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, Final

from ._call import CallState
from ._sdk import placeholder_request
from ._served import current_record, open_blocks
from ._streams import cap_header_wait, prime_sync, send_and_prime_async

#: The call whose attempt is being sent: ``_default_create(**kwargs)`` reads its request options
#: here, so that it receives exactly the attempt's keyword arguments and nothing else.
current_call: Final[ContextVar[CallState | None]] = ContextVar("notdiamond_call", default=None)


def first_chunk_limit(call: CallState, now: float) -> float | None:
    """Seconds a streamed attempt sent at ``now`` may take to its first chunk: the model's
    ``first_chunk_timeout``, cut to the call's deadline (which covers the wait for the first chunk,
    not the caller's reading of the stream). ``None``: no limit beyond the attempt's timeout."""
    limit = call.pipeline.first_chunk_timeouts.get(call.key)
    if call.timed and call.deadline is not None:
        left = call.deadline - now
        if limit is None or left < limit:
            if limit is not None:  # the deadline, not first_chunk_timeout, bounds the wait
                call.clamped = True  # a timeout of this attempt is the deadline's
            limit = left
    return limit


def _stream_clock(call: CallState) -> bool:
    """Whether a streamed attempt of ``call`` needs the clock (a first-chunk limit may apply)."""
    return bool(call.pipeline.first_chunk_timeouts) or (call.timed and call.deadline is not None)


def primed_async(call: CallState, attempt: Awaitable[Any]) -> Awaitable[Any]:
    """A streamed attempt of an async call, to be awaited up to its first chunk (SPEC 4.9)."""
    pipeline = call.pipeline
    limit = first_chunk_limit(call, pipeline.clock()) if _stream_clock(call) else None
    return send_and_prime_async(
        attempt,
        key=call.key,
        request=lambda: placeholder_request(call.client, call.options),
        first_chunk_timeout=limit,
        clock=pipeline.clock,
        sleep=pipeline.sleep,
    )


def run_sync(call: CallState) -> Any:
    """Run a call of a sync client to its result or its final error."""
    pipeline = call.pipeline
    while True:
        kwargs = call.attempt_kwargs()
        wrapper = pipeline.wrapper_of[call.key]
        direct = wrapper._plain and "_default_create" not in wrapper.__dict__
        token = None if direct else current_call.set(call)
        limit = sent = read = None
        if call.stream and _stream_clock(call):
            # With a deadline the attempt's timeout was cut to the time left when it started:
            # measured from that same instant, a deadline alone needs no second, shorter cap
            # (cap_header_wait returns None) and no clock read.
            timed = call.timed and call.deadline is not None
            sent = call.attempt_started if timed else pipeline.clock()
            limit = first_chunk_limit(call, sent)
            client = call.client if call.origin is wrapper else wrapper._client
            if limit is not None and (cap := cap_header_wait(client, kwargs["timeout"], limit)):
                kwargs["timeout"], read = cap[0], (cap[1],)
        try:
            attempt = wrapper._send(call, kwargs) if direct else wrapper._default_create(**kwargs)
            result = attempt
            if call.stream:  # the first chunk is part of the attempt (SPEC 4.9)
                result = prime_sync(
                    result,
                    key=call.key,
                    sent=sent or 0.0,
                    first_chunk_timeout=limit,
                    clock=pipeline.clock,
                    read_timeout=read,
                )
        except Exception as exc:
            failure = exc
        except BaseException:
            call.abandoned()
            raise
        else:
            if call.timed:
                count = pipeline.count_success
                if count is not None and call.probing is None:
                    count[call.key](pipeline.clock())  # call.succeeded(), in short
                else:
                    call.succeeded()
            if open_blocks[0] and (served := current_record.get()) is not None:
                served.models.append(call.key)
            return result
        finally:
            if token is not None:
                current_call.reset(token)
        wait = call.failed_with(failure)
        if wait is None:
            raise call.final_error()
        if wait > 0:
            pipeline.sleep(wait)
            if pipeline.readmit_by and not call.waited():
                raise call.final_error()


async def run_async(call: CallState) -> Any:
    """Run a call of an async client to its result or its final error."""
    pipeline = call.pipeline
    while True:
        kwargs = call.attempt_kwargs()
        wrapper = pipeline.wrapper_of[call.key]
        direct = wrapper._plain and "_default_create" not in wrapper.__dict__
        token = None if direct else current_call.set(call)
        try:
            attempt = wrapper._send(call, kwargs) if direct else wrapper._default_create(**kwargs)
            if call.stream:  # the first chunk is part of the attempt (SPEC 4.9)
                attempt = primed_async(call, attempt)
            result = await attempt
        except Exception as exc:
            failure = exc
        except BaseException:
            call.abandoned()
            raise
        else:
            if call.timed:
                count = pipeline.count_success
                if count is not None and call.probing is None:
                    count[call.key](pipeline.clock())  # call.succeeded(), in short
                else:
                    call.succeeded()
            if open_blocks[0] and (served := current_record.get()) is not None:
                served.models.append(call.key)
            return result
        finally:
            if token is not None:
                current_call.reset(token)
        wait = call.failed_with(failure)
        if wait is None:
            raise call.final_error()
        if wait > 0:
            await pipeline.sleep(wait)
            if pipeline.readmit_by and not call.waited():
                raise call.final_error()
