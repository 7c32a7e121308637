"""A client whose ``chat.completions.create`` was replaced (a test's mock, instrumentation).

When a wrapper is built for such a client, the manager puts its own ``create`` in front of the
replacement: a managed call runs through the pipeline and each attempt calls the replacement once,
with exactly that attempt's keyword arguments (``model=<bare name>``, ``messages``, ``timeout``,
and the caller's other arguments), so the replacement sees every attempt with its real model name
and never the caller's own call. Inside an attempt, the request the replacement makes through the
SDK passes the client's hook unrouted. A call the manager does not route goes to the replacement
unchanged. ``close()`` puts the replacement back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from openai import NotGiven

from ._call import CallState
from ._sdk import CHAT_COMPLETIONS_PATH, FinalRequestOptions

if TYPE_CHECKING:
    from ._assembly import Pipeline


class Wrapper(Protocol):
    """What this module needs of the wrapper serving the client (``RetryWrapper``)."""

    _client: Any
    pipeline: Pipeline
    drive: Callable[[CallState], Any]

    def route_model(self, model: str) -> str | None: ...


#: ``CallState.cast_to`` of a call that entered through the manager's ``create``: its attempts
#: go to the replacement rather than to the SDK's ``request``.
VIA_REPLACEMENT: Final = object()

#: Marks the manager's own ``create``; ``replaced`` is the replacement it stands in front of.
ENTRY_ATTR: Final = "__notdiamond_replaced__"


def replaced_create(client: Any) -> Callable[..., Any] | None:
    """The replacement of ``client.chat.completions.create``, or ``None`` if it is the SDK's."""
    # Read without building the SDK's cached ``chat``/``completions`` (the client stays as it is).
    chat = vars(client).get("chat")
    completions = None if chat is None else vars(chat).get("completions")
    current = None if completions is None else vars(completions).get("create")
    if current is None:
        return None
    # A client managed before: look through the earlier manager's entry to the replacement.
    earlier: Callable[..., Any] | None = getattr(current, ENTRY_ATTR, None)
    return earlier if earlier is not None else current


def entry(wrapper: Wrapper, replacement: Callable[..., Any]) -> Callable[..., Any]:
    """The manager's ``create`` for ``wrapper``'s client, in front of ``replacement``."""
    client = wrapper._client

    def create(*args: Any, **kwargs: Any) -> Any:
        model = kwargs.get("model")
        key = wrapper.route_model(model) if not args and isinstance(model, str) else None
        if key is None:
            return replacement(*args, **kwargs)
        body = dict(kwargs)
        timeout = body.pop("timeout", NotGiven())
        options = FinalRequestOptions.construct(
            method="post", url=CHAT_COMPLETIONS_PATH, json_data=body, timeout=timeout
        )
        stream = body.get("stream") is True
        call = CallState(
            wrapper.pipeline, wrapper, client, key, VIA_REPLACEMENT, options, stream, None
        )
        return wrapper.drive(call)

    setattr(create, ENTRY_ATTR, replacement)
    return create


def install_entry(wrapper: Wrapper, replacement: Callable[..., Any]) -> Callable[..., Any]:
    """Put the manager's ``create`` in front of ``replacement``; return it."""
    function = entry(wrapper, replacement)
    vars(wrapper._client.chat.completions)["create"] = function
    return function


def remove_entry(wrapper: Wrapper, function: Callable[..., Any]) -> None:
    """Put the replacement back, unless something replaced the manager's ``create`` since."""
    completions = vars(wrapper._client.chat.completions)
    if completions.get("create") is function:
        completions["create"] = getattr(function, ENTRY_ATTR)
