"""notdiamond: retries, timeouts, fallback and weighted load balancing for OpenAI SDK clients.

import notdiamond
notdiamond.init([openai_client, azure_client], models={"openai/gpt-4o": 0.9, "azure/gpt-4o": 0.1})
"""

from __future__ import annotations

from ._failures import Failure, failures_of
from ._init import InitOptions, init
from ._manager import AsyncRetryWrapper, RetryManager, RetryWrapper
from ._pipeline import AttemptEvent
from ._types import (
    ClientsInput,
    ClientType,
    MessagesInput,
    ModelsInput,
    ModelType,
    OpenAIMessagesType,
)

__version__ = "0.5.0"

__all__ = [
    "AsyncRetryWrapper",
    "AttemptEvent",
    "ClientType",
    "ClientsInput",
    "Failure",
    "InitOptions",
    "MessagesInput",
    "ModelType",
    "ModelsInput",
    "OpenAIMessagesType",
    "RetryManager",
    "RetryWrapper",
    "__version__",
    "failures_of",
    "init",
]
