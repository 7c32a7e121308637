"""``notdiamond.init``: validate everything, then patch the clients (or nothing at all)."""

from __future__ import annotations

import difflib
import inspect
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypedDict

import anyio
from typing_extensions import Unpack

from ._config import DEFAULT_BACKOFF, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, parse_config
from ._deadline import check_deadline
from ._hedging import Hedge, check_hedge
from ._manager import RetryManager
from ._pipeline import Observer
from ._policy import DEFAULT_RETRY_AFTER_CAP
from ._sdk import Provider, classify_client
from ._types import ClientType, ModelsInput, OpenAIMessagesType

logger = logging.getLogger("notdiamond")


class InitOptions(TypedDict, total=False):
    """Keyword-only options beyond the seed's signature; each defaults to the seed's behaviour."""

    #: Seed of the manager's own generator for weighted selection (reproducible draws).
    seed: int | None
    #: Monotonic clock in seconds, read for ``observer`` events (default ``time.monotonic``).
    clock: Callable[[], float]
    #: Backoff sleep: ``time.sleep`` for sync clients, ``anyio.sleep`` (a coroutine) for async ones.
    sleep: Callable[[float], object] | Callable[[float], Awaitable[object]]
    #: Leave the SDK's own retries on (they multiply every attempt; off by default).
    sdk_retries: bool
    #: A Retry-After longer than this many seconds makes the call fall back instead of waiting.
    retry_after_cap: float
    #: Shorten each backoff wait by a random fraction up to this (0..1); 0 = the exact schedule.
    jitter: float
    #: Called with an ``AttemptEvent`` after every attempt (tracing, metrics, the chaos harness).
    observer: Observer | None
    #: Seconds one logical call may take, all attempts, waits and fallbacks included (default none).
    deadline: float | None
    #: Hedged requests (async clients): ``notdiamond.Hedge(delay=2.0, max_extra=1)``; default none.
    hedge: Hedge | None


_OPTION_NAMES = tuple(InitOptions.__annotations__)


def init(
    client: ClientType | list[ClientType],
    models: ModelsInput,
    max_retries: int | Mapping[str, int] = DEFAULT_MAX_RETRIES,
    timeout: float | Mapping[str, float] = DEFAULT_TIMEOUT,
    model_messages: OpenAIMessagesType | Mapping[str, OpenAIMessagesType] | None = None,
    api_key: str | None = None,
    async_mode: bool = False,
    backoff: float | Mapping[str, float] = DEFAULT_BACKOFF,
    **options: Unpack[InitOptions],
) -> RetryManager:
    """Add retries, timeouts, fallback and load balancing to existing OpenAI SDK clients.

    After this call every ``chat.completions`` call on the clients (create, streaming, parse,
    raw and streaming responses, ``with_options`` copies) follows the configuration; code that
    uses the clients does not change. ``model="notdiamond"`` lets the manager choose.

    Args:
        client: One client or a list: at most one per provider (``OpenAI`` -> ``openai``,
            ``AzureOpenAI`` -> ``azure``), all sync or all async.
        models: ``["openai/gpt-4o", "azure/gpt-4o"]`` in priority order, or
            ``{"openai/gpt-4o": 0.9, "azure/gpt-4o": 0.1}`` to balance by weight.
        max_retries: Attempts per model (1 = one try, then fall back); one number or per model.
        timeout: Seconds per attempt; one number or per model.
        model_messages: Messages prepended to the caller's on every attempt of a model.
        api_key: Not Diamond API key (falls back to ``NOTDIAMOND_API_KEY``); sends nothing.
        async_mode: Informational: the clients' own type decides sync or async.
        backoff: The wait after the k-th failed attempt of a model is ``backoff ** k`` seconds.
        **options: Keyword-only extras, see :class:`InitOptions`.

    Returns:
        The :class:`RetryManager`; ``close()`` it (or use ``with``) to restore the clients.

    Raises:
        TypeError, ValueError: for any invalid input, naming the fix; nothing is patched then.
    """
    unknown = [name for name in options if name not in _OPTION_NAMES]
    if unknown:
        hints = [
            f"{name!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(name, _OPTION_NAMES, n=1))
            else repr(name)
            for name in unknown
        ]
        raise TypeError(
            f"notdiamond.init() got unknown option(s) {', '.join(hints)}. "
            f"Options are: {', '.join(_OPTION_NAMES)}."
        )

    clients, is_async = _clients_by_provider(client)
    if async_mode != is_async:
        logger.warning(
            "notdiamond.init: async_mode=%s but the clients are %s; managing them as %s clients.",
            async_mode,
            "async" if is_async else "sync",
            "async" if is_async else "sync",
        )
    config = parse_config(
        models,
        max_retries=max_retries,
        timeout=timeout,
        backoff=backoff,
        model_messages=model_messages,
        available_providers=frozenset(clients),
    )
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError("api_key must be a string (or None to read NOTDIAMOND_API_KEY).")

    manager = RetryManager(
        config,
        clients,
        is_async=is_async,
        api_key=api_key if api_key is not None else os.environ.get("NOTDIAMOND_API_KEY"),
        seed=_seed(options.get("seed")),
        clock=_callable("clock", options.get("clock", time.monotonic)),
        sleep=_sleep(options.get("sleep"), is_async),
        sdk_retries=_flag("sdk_retries", options.get("sdk_retries", False)),
        retry_after_cap=_cap(options.get("retry_after_cap", DEFAULT_RETRY_AFTER_CAP)),
        jitter=_jitter(options.get("jitter", 0.0)),
        observer=_observer(options.get("observer")),
        deadline=_deadline(options.get("deadline")),
        hedge=check_hedge(options.get("hedge"), is_async=is_async, config=config),
    )
    manager._install()
    return manager


def _clients_by_provider(client: object) -> tuple[dict[Provider, Any], bool]:
    given = list(client) if isinstance(client, list | tuple) else [client]
    if not given:
        raise ValueError(
            "client: the list is empty. Pass the OpenAI/AzureOpenAI clients to manage."
        )
    clients: dict[Provider, Any] = {}
    kinds: set[bool] = set()
    for each in given:
        provider, is_async = classify_client(each)
        if provider in clients:
            same = clients[provider] is each
            raise ValueError(
                f"client: {'the same client is listed twice' if same else 'two clients'} for "
                f"provider {provider!r}. Pass one client per provider; to balance two deployments, "
                "use one client per provider and configure models for each."
            )
        clients[provider] = each
        kinds.add(is_async)
    if len(kinds) > 1:
        raise ValueError(
            "client: sync and async clients are mixed. Call notdiamond.init once for the sync "
            "clients and once for the async ones."
        )
    return clients, kinds.pop()


def _seed(value: object) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"seed must be an int or None, got {value!r}.")
    return value


def _callable(name: str, value: object) -> Any:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}.")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return value


def _cap(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < 0
    ):
        raise ValueError(
            f"retry_after_cap must be a number of seconds >= 0 (math.inf to always wait), got {value!r}."
        )
    return float(value)


def _jitter(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(
            f"jitter is the largest fraction by which a backoff wait is shortened at random: a "
            f"number from 0 (off) to 1, got {value!r}. E.g. jitter=0.25."
        )
    return float(value)


def _deadline(value: object) -> float | None:
    return None if value is None else check_deadline("deadline", value)


def _observer(value: object) -> Observer | None:
    return None if value is None else _callable("observer", value)


def _is_coroutine_function(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  (callable objects with an async __call__)
    )


def _sleep(value: object, is_async: bool) -> Any:
    if value is None:
        return anyio.sleep if is_async else time.sleep
    _callable("sleep", value)
    if is_async and not _is_coroutine_function(value):
        raise TypeError(
            "sleep: async clients need a coroutine function, e.g. asyncio.sleep or "
            "`async def sleep(seconds): ...`."
        )
    if not is_async and _is_coroutine_function(value):
        raise TypeError(
            "sleep: sync clients need a plain function such as time.sleep, not a coroutine."
        )
    return value
