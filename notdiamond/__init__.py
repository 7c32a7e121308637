"""notdiamond: retries, timeouts, fallback and weighted load balancing for OpenAI SDK clients.

import notdiamond
notdiamond.init([openai_client, azure_client], models={"openai/gpt-4o": 0.9, "azure/gpt-4o": 0.1})
"""

from __future__ import annotations

from ._call import AttemptEvent, ModelsUnavailable
from ._deadline import DeadlineExceeded, deadline
from ._failures import Failure, failures_of
from ._hedge_options import Hedge
from ._init import InitOptions, init
from ._manager import AsyncRetryWrapper, RetryManager, RetryWrapper
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
    "DeadlineExceeded",
    "Failure",
    "Hedge",
    "InitOptions",
    "MessagesInput",
    "ModelType",
    "ModelsInput",
    "ModelsUnavailable",
    "OpenAIMessagesType",
    "RetryManager",
    "RetryWrapper",
    "__version__",
    "deadline",
    "failures_of",
    "init",
]
