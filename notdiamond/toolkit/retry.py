"""The original SDK's import path of the retry seams (``from notdiamond.toolkit.retry import ...``)."""

from __future__ import annotations

from notdiamond.toolkit._retry import (
    AsyncRetryWrapper,
    ClientType,
    ModelType,
    OpenAIMessagesType,
    RetryManager,
    RetryWrapper,
)

__all__ = [
    "AsyncRetryWrapper",
    "ClientType",
    "ModelType",
    "OpenAIMessagesType",
    "RetryManager",
    "RetryWrapper",
]
