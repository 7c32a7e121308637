"""A bound on one logical call's total time: ``deadline=`` at init, ``notdiamond.deadline(s)`` per block.

The block form is a context variable, so it follows threads' and asyncio tasks' own contexts: each
call made inside the block is bounded to that many seconds from its own start, on its manager's
clock. With both set, the smaller applies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

import openai

from ._options import check_deadline

#: Seconds allowed to each call started inside ``with notdiamond.deadline(s):``; ``None`` outside.
block_deadline: Final[ContextVar[float | None]] = ContextVar("notdiamond_deadline", default=None)


class DeadlineExceeded(openai.APITimeoutError):
    """The call's deadline passed before any attempt could answer.

    Raised when no attempt could be sent in the time left, or when the attempt in flight was cut
    short by the deadline. A subclass of ``openai.APITimeoutError``, so existing
    ``except openai.APITimeoutError`` handlers catch it. The failures before it are attached as on
    any final error (``notdiamond.failures_of(exc)``).
    """

    def __init__(self, seconds: float, request: object) -> None:
        super().__init__(request=request)  # type: ignore[arg-type]
        self.seconds = seconds
        self.message = f"notdiamond: the call's deadline of {seconds:g} s passed."
        self.args = (self.message,)

    def __str__(self) -> str:
        return self.message


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every managed call made inside the block to ``seconds`` from that call's start.

    >>> with notdiamond.deadline(5.0):
    ...     client.chat.completions.create(model="notdiamond", messages=[...])

    Nested blocks: the innermost applies. An init ``deadline=`` also applies; the smaller wins.
    """
    value = check_deadline(seconds, where="notdiamond.deadline(seconds)")
    token = block_deadline.set(value)
    try:
        yield
    finally:
        block_deadline.reset(token)
