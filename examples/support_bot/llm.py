"""The application's LLM setup: its clients and its one ``notdiamond.init`` line.

``setup()`` is what the application runs at start-up, and what
``python -m notdiamond.chaos --init support_bot.llm:setup`` points at: the harness runs this very
function, then replays the configuration it built against fake providers under faults.
``make_resilient`` is the ``init`` call itself, so the application's tests can apply it to the
chaos plugin's fake clients.
"""

from __future__ import annotations

import os

from openai import AzureOpenAI, OpenAI

import notdiamond

MODELS = {"openai/gpt-4o": 0.8, "azure/gpt-4o": 0.2}


def make_resilient(openai_client: OpenAI, azure_client: AzureOpenAI) -> notdiamond.RetryManager:
    """The application's one added line."""
    return notdiamond.init(
        [openai_client, azure_client],
        models=MODELS,
        max_retries={"openai/gpt-4o": 2, "azure/gpt-4o": 1},
        timeout={"openai/gpt-4o": 10.0, "azure/gpt-4o": 8.0},
        backoff=0.5,
        circuit_breaker=True,
    )


def setup() -> notdiamond.RetryManager:
    """Build the application's clients and make them resilient; returns what ``init`` returned."""
    openai_client = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "sk-example"))
    azure_client = AzureOpenAI(
        api_key=os.environ.get("AZURE_OPENAI_API_KEY", "azure-example"),
        azure_endpoint=os.environ.get("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com"),
        api_version=os.environ.get("OPENAI_API_VERSION", "2024-06-01"),
    )
    return make_resilient(openai_client, azure_client)
