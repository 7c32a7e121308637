"""The pipeline of one ``init``, assembled once, and the drivers that run a call through it.

Data flows one way: the client's hook builds a :class:`~notdiamond._call.CallState`, a driver sends
its attempts through the wrapper of each attempt's model (``wrapper._default_create(**kwargs)``),
and the call's state decides what follows each outcome, consulting the strategies. The drivers
differ only in how they wait and await.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

from ._call import AttemptEvent, CallState
from ._strategy import HOOKS, Strategy, overrides

if TYPE_CHECKING:
    from ._config import ModelSettings
    from ._hedging import Hedging
    from ._policy import RetryPolicy

Observer = Callable[[AttemptEvent], object]

#: The call whose attempt is being sent: ``_default_create(**kwargs)`` reads its request options
#: here, so that it receives exactly the attempt's keyword arguments and nothing else.
current_call: Final[ContextVar[CallState | None]] = ContextVar("notdiamond_call", default=None)


class Pipeline:
    """Everything a call consults, assembled once per ``init`` from the strategies switched on."""

    def __init__(
        self,
        *,
        settings: Mapping[str, ModelSettings],
        next_model: Callable[[Collection[str]], str | None],
        policies: Mapping[str, RetryPolicy],
        strategies: Sequence[Strategy],
        clock: Callable[[], float],
        sleep: Any,
        observer: Observer | None,
        deadline: float | None,
        hedge: Hedging | None = None,
    ) -> None:
        self.settings = settings
        self.next_model = next_model
        self.policies = policies
        self.strategies = tuple(strategies)
        self.clock = clock
        self.sleep = sleep
        self.observer = observer
        self.deadline = deadline
        #: Hedged requests (async clients only), or ``None``.
        self.hedge = hedge
        #: The driver of this pipeline's async calls, chosen once: hedged or one attempt at a time.
        self.run_async: Callable[[CallState], Awaitable[Any]] = run_async
        if hedge is not None:
            from ._hedging import run_async_hedged  # (this module is imported by it)

            self.run_async = run_async_hedged
        #: Who sends each model's attempts: filled in once the wrappers exist.
        self.wrapper_of: dict[str, Any] = {}
        # For each hook, only the strategies that override it (a hook nobody overrides is skipped).
        by_hook = {hook: tuple(s for s in self.strategies if overrides(s, hook)) for hook in HOOKS}
        self.admit_by = by_hook["admit"]
        self.last_resort_by = by_hook["last_resort"]
        self.attempt_started_by = by_hook["attempt_started"]
        self.attempt_succeeded_by = by_hook["attempt_succeeded"]
        self.attempt_failed_by = by_hook["attempt_failed"]
        self.allow_retry_by = by_hook["allow_retry"]
        self.readmit_by = by_hook["readmit"]
        self.attempt_abandoned_by = by_hook["attempt_abandoned"]
        #: Whether every call reads the clock (strategies, observers and deadlines need it).
        self.timed = (
            bool(self.strategies)
            or observer is not None
            or deadline is not None
            or hedge is not None
        )


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
