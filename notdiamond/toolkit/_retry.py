"""The names the original API document uses, importable from where it says they live."""

from __future__ import annotations

from notdiamond._manager import AsyncRetryWrapper, RetryManager, RetryWrapper
from notdiamond._types import ClientType, ModelType, OpenAIMessagesType

__all__ = [
    "AsyncRetryWrapper",
    "ClientType",
    "ModelType",
    "OpenAIMessagesType",
    "RetryManager",
    "RetryWrapper",
]
