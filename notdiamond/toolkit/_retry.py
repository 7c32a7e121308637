"""The names the original API document uses, importable from where it says they live."""

from __future__ import annotations

from .._manager import AsyncRetryWrapper, RetryManager, RetryWrapper
from .._types import ClientType, ModelType, OpenAIMessagesType

__all__ = [
    "AsyncRetryWrapper",
    "ClientType",
    "ModelType",
    "OpenAIMessagesType",
    "RetryManager",
    "RetryWrapper",
]
