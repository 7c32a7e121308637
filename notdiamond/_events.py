"""What the runtime reports of each attempt: the events an ``observer`` receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Decision = Literal["success", "retry", "fallback", "hedge", "raise"]

#: ``(model key, attempt number on that model, the exception)`` for each failed attempt of a call.
FailureRecord = tuple[str, int, Exception]


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """One attempt, as the manager's ``observer`` sees it. Times come from the manager's clock.

    ``decision`` is what followed: ``success``; ``retry`` (same model, after ``next_wait`` s);
    ``fallback`` (to another model, at once); ``hedge`` (with ``hedge=``: the call goes on with
    another attempt already running in parallel, because this one was cancelled when that one
    answered first, or failed with no further model to start); ``raise`` (no model left: the
    error reaches the caller).
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


#: Called with an :class:`AttemptEvent` after every attempt (``init(..., observer=...)``).
Observer = Callable[[AttemptEvent], object]
