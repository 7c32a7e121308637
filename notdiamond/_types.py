"""Public type aliases, named as in the original API document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI

#: A client whose ``chat.completions`` calls ``notdiamond.init`` manages.
ClientType: TypeAlias = OpenAI | AzureOpenAI | AsyncOpenAI | AsyncAzureOpenAI
#: Models in priority order (a list) or with load-balancing weights (a dict).
ModelType: TypeAlias = dict[str, float] | list[str]
#: Messages in the OpenAI chat format, e.g. ``[{"role": "system", "content": "..."}]``.
OpenAIMessagesType: TypeAlias = list[dict[str, str]]

#: What ``init`` accepts where the seed says ``ModelType`` (any mapping or sequence of keys).
ModelsInput: TypeAlias = Mapping[str, float] | Sequence[str]
Message: TypeAlias = Mapping[str, Any]
