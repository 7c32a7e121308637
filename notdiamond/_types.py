"""Public type aliases, named as in the original API document, and what ``init`` accepts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam

#: A client whose ``chat.completions`` calls ``notdiamond.init`` manages.
ClientType: TypeAlias = OpenAI | AzureOpenAI | AsyncOpenAI | AsyncAzureOpenAI
#: Models in priority order (a list) or with load-balancing weights (a dict).
ModelType: TypeAlias = dict[str, float] | list[str]
#: Messages in the OpenAI chat format, e.g. ``[{"role": "system", "content": "..."}]``.
OpenAIMessagesType: TypeAlias = list[dict[str, str]]

#: What ``init`` accepts for its clients: one client, or any sequence of them (a
#: ``list[OpenAI | AzureOpenAI]`` variable included: ``Sequence`` is covariant, ``list`` is not).
ClientsInput: TypeAlias = ClientType | Sequence[ClientType]
#: What ``init`` accepts where the seed says ``ModelType`` (any mapping or sequence of keys).
ModelsInput: TypeAlias = Mapping[str, float] | Sequence[str]
#: Messages for ``model_messages``: the SDK's own typed messages (``ChatCompletionMessageParam``,
#: as ``client.chat.completions.create`` takes them), or plain mappings such as
#: ``OpenAIMessagesType``.
MessagesInput: TypeAlias = Sequence[ChatCompletionMessageParam] | Sequence[Mapping[str, Any]]
Message: TypeAlias = Mapping[str, Any]
