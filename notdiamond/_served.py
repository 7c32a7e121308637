"""Which configured model served a call: ``with notdiamond.served_models() as served:``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final


class ServedModels:
    """The model keys that served the managed calls completed inside a ``served_models()`` block.

    A call counts once it returned (for ``stream=True``: once the stream was opened); a call that
    raised is not listed (``notdiamond.failures_of(exc)`` tells what it tried).
    """

    __slots__ = ("models",)

    def __init__(self) -> None:
        #: One configured key (``"azure/gpt-4o"``) per completed call, in completion order.
        self.models: list[str] = []

    @property
    def model(self) -> str | None:
        """The key that served the most recent call of the block; ``None`` before any."""
        return self.models[-1] if self.models else None

    def __repr__(self) -> str:
        return f"ServedModels({self.models!r})"


#: The innermost open ``served_models()`` record of this thread or task; ``None`` outside.
current_record: Final[ContextVar[ServedModels | None]] = ContextVar(
    "notdiamond_served", default=None
)


#: How many ``served_models()`` blocks are open in the process: while none is, a call skips even
#: the context-variable read (``open_blocks[0]`` is a global load and an index, ~10 ns).
open_blocks: Final[list[int]] = [0]
_open_lock: Final = threading.Lock()


@contextlib.contextmanager
def served_models() -> Iterator[ServedModels]:
    """Record which configured model key served each managed call made inside the block.

    ::

        with notdiamond.served_models() as served:
            response = client.chat.completions.create(model="notdiamond", messages=messages)
        served.model  # e.g. "azure/gpt-4o"

    The record follows the context like ``notdiamond.deadline``: asyncio tasks started inside the
    block (``asyncio.gather``) add to it too; a thread does so when run in a copy of the block's
    context (``contextvars.copy_context().run``). Blocks nest: a call is recorded by the innermost
    one. While no block is open anywhere, it costs a call nothing but one counter read.
    """
    record = ServedModels()
    token = current_record.set(record)
    with _open_lock:
        open_blocks[0] += 1
    try:
        yield record
    finally:
        with _open_lock:
            open_blocks[0] -= 1
        current_record.reset(token)
