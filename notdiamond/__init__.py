"""notdiamond: retries, timeouts, fallback and weighted load balancing for OpenAI SDK clients.

import notdiamond
notdiamond.init([openai_client, azure_client], models={"openai/gpt-4o": 0.9, "azure/gpt-4o": 0.1})
"""

from __future__ import annotations

from ._call import ModelsUnavailable
from ._deadline import DeadlineExceeded, deadline
from ._events import AttemptEvent
from ._failures import Failure, failures_of
from ._health.circuit import Transition as BreakerTransition
from ._health.redis_state import RedisState
from ._health.snapshot import ModelHealth
from ._hedge_options import Hedge
from ._init import InitOptions, init
from ._manager import AsyncRetryWrapper, RetryManager, RetryWrapper
from ._served import ServedModels, served_models
from ._strategies.breaker import CircuitBreaker
from ._strategies.budget import RetryBudget
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
    "BreakerTransition",
    "CircuitBreaker",
    "ClientType",
    "ClientsInput",
    "DeadlineExceeded",
    "Failure",
    "Hedge",
    "InitOptions",
    "MessagesInput",
    "ModelHealth",
    "ModelType",
    "ModelsInput",
    "ModelsUnavailable",
    "OpenAIMessagesType",
    "RedisState",
    "RetryBudget",
    "RetryManager",
    "RetryWrapper",
    "ServedModels",
    "__version__",
    "deadline",
    "failures_of",
    "init",
    "served_models",
]
