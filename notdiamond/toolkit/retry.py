"""The original SDK's import path of the retry seams (``from notdiamond.toolkit.retry import ...``)."""

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
