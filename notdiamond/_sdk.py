"""What this library needs to know about the OpenAI SDK, in one place (openai 2.x and 3.x)."""

from __future__ import annotations

from typing import Any, Final, Literal

from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI
from openai._models import FinalRequestOptions

__all__ = [
    "CHAT_COMPLETIONS_PATH",
    "FinalRequestOptions",
    "Provider",
    "classify_client",
    "set_request_fields",
]

Provider = Literal["openai", "azure"]
PROVIDERS: Final[tuple[Provider, ...]] = ("openai", "azure")

#: The logical path of every chat completion (also for Azure: the deployment prefix is added later,
#: when the SDK builds the HTTP request from ``json_data["model"]``).
CHAT_COMPLETIONS_PATH: Final[str] = "/chat/completions"

SUPPORTED_CLIENTS = "OpenAI, AzureOpenAI, AsyncOpenAI or AsyncAzureOpenAI"


def classify_client(client: object) -> tuple[Provider, bool]:
    """Return ``(provider, is_async)`` for a supported client, else raise ``TypeError``.

    ``AzureOpenAI`` subclasses ``OpenAI``, so the Azure classes are tested first: the answer never
    depends on the order in which the caller lists its clients.
    """
    if isinstance(client, AzureOpenAI):
        return "azure", False
    if isinstance(client, AsyncAzureOpenAI):
        return "azure", True
    if isinstance(client, OpenAI):
        return "openai", False
    if isinstance(client, AsyncOpenAI):
        return "openai", True
    raise TypeError(
        f"notdiamond.init() manages OpenAI SDK clients; got {type(client).__name__}. "
        f"Pass an instance of openai.{SUPPORTED_CLIENTS} (or a list of them)."
    )


def set_request_fields(
    options: FinalRequestOptions, timeout: Any, json_data: dict[str, Any], no_sdk_retries: bool
) -> None:
    """Write one attempt's body and timeout (and ``max_retries=0``) into the SDK's request options.

    Stored straight into the model's ``__dict__``, as pydantic's ``__setattr__`` would for a model
    without assignment validation, minus its per-assignment checks (about 2 µs per attempt). The
    SDK reads these fields as attributes and never dumps the options, so the pydantic set of
    explicitly set fields is left alone. The object is built fresh by the SDK for each call and
    copied by ``client.request`` before use, so writing it between attempts is safe.
    """
    fields = options.__dict__
    fields["json_data"] = json_data
    fields["timeout"] = timeout
    if no_sdk_retries:
        fields["max_retries"] = 0


def placeholder_request(client: Any, options: FinalRequestOptions) -> Any:
    """The HTTP request a call would send, for errors raised without sending one (a deadline).

    The SDK's exceptions carry the request; this builds it the SDK's way, sending nothing.
    """
    try:
        return client._build_request(options)
    except Exception:  # the error being raised matters more than its request attribute
        return None
