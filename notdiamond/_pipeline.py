"""One logical chat completion through the manager: attempts, waits, fallback, the final error.

:class:`Call` holds the decisions (shared by sync and async); ``run_sync``/``run_async`` only
perform them: send an attempt, sleep, or raise.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from openai import NotGiven

from ._policy import status_of

if TYPE_CHECKING:
    from ._manager import BaseRetryWrapper
    from ._sdk import FinalRequestOptions

logger = logging.getLogger("notdiamond")

Decision = Literal["success", "retry", "fallback", "raise"]


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One attempt, as the manager's ``observer`` sees it. Times come from the manager's clock.

    ``decision`` is what followed: ``success``; ``retry`` (same model, after ``next_wait`` s);
    ``fallback`` (to another model, at once); ``raise`` (no model left: the error reaches the caller).
    """

    call_id: int
    model: str
    provider: str
    attempt: int
    started: float
    finished: float
    wait_before: float
    decision: Decision
    error: BaseException | None = None
    status_code: int | None = None
    next_wait: float | None = None


_call_ids: Final = itertools.count(1)


class Call:
    """The state of one logical call: which model, which attempt, what failed so far."""

    __slots__ = (
        "attempt",
        "body",
        "call_id",
        "cast_to",
        "client",
        "failures",
        "key",
        "manager",
        "options",
        "origin",
        "started",
        "stream",
        "stream_cls",
        "timeout",
        "wait_before",
    )

    def __init__(
        self,
        origin: BaseRetryWrapper,
        client: Any,
        key: str,
        cast_to: Any,
        options: FinalRequestOptions,
        stream: bool,
        stream_cls: Any,
    ) -> None:
        self.origin = origin  # the wrapper whose client (``client``, or a copy of it) was called
        self.manager = origin._manager
        self.client = client
        self.cast_to = cast_to
        self.options = options
        self.stream = stream
        self.stream_cls = stream_cls
        self.body: dict[str, Any] = options.json_data  # type: ignore[assignment]  # routed dicts only
        caller_timeout = options.timeout
        self.timeout = None if caller_timeout.__class__ is NotGiven else (caller_timeout,)
        self.key = key
        self.attempt = 1
        self.wait_before = 0.0
        self.failures: list[tuple[str, int, Exception]] = []
        self.call_id = next(_call_ids)
        self.started = 0.0

    def attempt_kwargs(self) -> dict[str, Any]:
        """The ``create`` keyword arguments of the next attempt (SPEC 4.2)."""
        manager = self.manager
        if manager.observer is not None:
            self.started = manager.clock()
        settings = manager.settings[self.key]
        kwargs = dict(self.body)
        kwargs["model"] = settings.model
        if settings.messages:
            kwargs["messages"] = [*settings.messages, *self.body.get("messages", ())]
        kwargs["timeout"] = settings.timeout if self.timeout is None else self.timeout[0]
        return kwargs

    def succeeded(self) -> None:
        self._emit("success", None, None)

    def failed_with(self, exc: Exception) -> float | None:
        """Decide after a failed attempt: the wait before the next one, or ``None`` to raise."""
        key, attempt = self.key, self.attempt
        self.failures.append((key, attempt, exc))
        wait = self.manager.policies[key].delay_after(attempt, exc)
        next_key: str | None = key
        decision: Decision = "retry"
        if wait is None:
            # Every model with a failure in this call has now been given up on.
            next_key = self.manager.get_next_model({k for k, _, _ in self.failures})
            decision = "raise" if next_key is None else "fallback"
        level = logging.INFO if decision == "retry" else logging.WARNING
        if logger.isEnabledFor(level):
            self._log(level, exc, decision, next_key, wait)
        if self.manager.observer is not None:
            self._emit(decision, exc, wait)
        if next_key is None:
            return None
        if wait is None:
            self.key, self.attempt, wait = next_key, 1, 0.0
        else:
            self.attempt += 1
        self.wait_before = wait
        return wait

    def final_error(self) -> Exception:
        """The last error, of its own SDK type, with the earlier failures noted on it."""
        last = self.failures[-1][2]
        last.notdiamond_failures = tuple(self.failures)  # type: ignore[attr-defined]
        if len(self.failures) > 1:
            earlier = "; ".join(
                f"{key} attempt {n}: {type(e).__name__}"
                + (f" ({status_of(e)})" if status_of(e) is not None else "")
                for key, n, e in self.failures[:-1]
            )
            add_note = getattr(last, "add_note", None)  # Python 3.11+
            if add_note is not None:
                add_note(f"notdiamond: every configured model failed. Earlier: {earlier}")
        return last

    def _emit(self, decision: Decision, exc: Exception | None, wait: float | None) -> None:
        manager = self.manager
        assert manager.observer is not None
        now = manager.clock()
        manager.observer(
            AttemptEvent(
                call_id=self.call_id,
                model=self.key,
                provider=manager.settings[self.key].provider,
                attempt=self.attempt,
                started=self.started,
                finished=now,
                wait_before=self.wait_before,
                decision=decision,
                error=exc,
                status_code=None if exc is None else status_of(exc),
                next_wait=wait if decision == "retry" else None,
            )
        )

    def _log(
        self,
        level: int,
        exc: Exception,
        decision: Decision,
        next_key: str | None,
        wait: float | None,
    ) -> None:
        status = status_of(exc)
        then = {
            "retry": f"retrying in {wait or 0.0:.3f}s",
            "fallback": f"falling back to {next_key}",
            "raise": "no model left; raising it",
            "success": "",
        }[decision]
        logger.log(
            level,
            "notdiamond: %s attempt %d/%d failed with %s%s; %s",
            self.key,
            self.attempt,
            self.manager.settings[self.key].max_attempts,
            type(exc).__name__,
            "" if status is None else f" (HTTP {status})",
            then,
        )


def run_sync(call: Call) -> Any:
    manager = call.manager
    while True:
        try:
            result = manager.wrapper_of[call.key]._default_create(call, **call.attempt_kwargs())
        except Exception as exc:
            wait = call.failed_with(exc)
            if wait is None:
                raise call.final_error()  # noqa: B904  (it is exc itself, annotated)
            if wait > 0:
                manager.sleep(wait)
            continue
        if manager.observer is not None:
            call.succeeded()
        return result


async def run_async(call: Call) -> Any:
    manager = call.manager
    while True:
        try:
            result = await manager.wrapper_of[call.key]._default_create(
                call, **call.attempt_kwargs()
            )
        except Exception as exc:
            wait = call.failed_with(exc)
            if wait is None:
                raise call.final_error()  # noqa: B904  (it is exc itself, annotated)
            if wait > 0:
                await manager.sleep(wait)
            continue
        if manager.observer is not None:
            call.succeeded()
        return result
