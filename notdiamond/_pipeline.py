"""The pipeline of one ``init``, assembled once, and the drivers that run a call through it.

Data flows one way: the client's hook builds a :class:`~notdiamond._call.CallState`, a driver sends
its attempts through the wrapper of each attempt's model (``wrapper._default_create(**kwargs)``),
and the call's state decides what follows each outcome, consulting the strategies. The drivers
differ only in how they wait and await.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Final

from ._call import CallState

#: The call whose attempt is being sent: ``_default_create(**kwargs)`` reads its request options
#: here, so that it receives exactly the attempt's keyword arguments and nothing else.
current_call: Final[ContextVar[CallState | None]] = ContextVar("notdiamond_call", default=None)


def run_sync(call: CallState) -> Any:
    """Run a call of a sync client to its result or its final error."""
    pipeline = call.pipeline
    while True:
        kwargs = call.attempt_kwargs()
        wrapper = pipeline.wrapper_of[call.key]
        direct = wrapper._plain and "_default_create" not in wrapper.__dict__
        token = None if direct else current_call.set(call)
        try:
            attempt = wrapper._send(call, kwargs) if direct else wrapper._default_create(**kwargs)
            result = attempt
        except Exception as exc:
            failure = exc
        except BaseException:
            call.abandoned()
            raise
        else:
            if call.timed:
                call.succeeded()
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
            result = await attempt
        except Exception as exc:
            failure = exc
        except BaseException:
            call.abandoned()
            raise
        else:
            if call.timed:
                call.succeeded()
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
