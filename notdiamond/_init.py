"""``notdiamond.init``: validate everything, then patch the clients (or nothing at all)."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypedDict

from typing_extensions import Unpack

from ._config import DEFAULT_BACKOFF, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, parse_config
from ._events import Observer
from ._health.store import HealthStore
from ._hedge_options import Hedge, check_hedge_models
from ._manager import RetryManager
from ._options import check_option_names, parse_options
from ._sdk import Provider, classify_client
from ._strategies import assemble
from ._strategies.breaker import CircuitBreaker
from ._strategies.budget import RetryBudget
from ._types import ClientsInput, MessagesInput, ModelsInput

logger = logging.getLogger("notdiamond")


class InitOptions(TypedDict, total=False):
    """Keyword-only options beyond the seed's signature; each defaults to the seed's behaviour.

    Their defaults and validation live in ``_options.OPTIONS`` (one row per field here).
    """

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
    #: Called with an ``AttemptEvent`` after every attempt (tracing, metrics, the chaos harness),
    #: and with a ``BreakerTransition`` on each change of a circuit breaker's state.
    observer: Observer | None
    #: Seconds one logical call may take, all attempts, waits and fallbacks included (default none).
    deadline: float | None
    #: Per-model circuit breaker: ``notdiamond.CircuitBreaker(...)``, ``True`` (the defaults) or
    #: ``None``/``False`` (off, the default).
    circuit_breaker: CircuitBreaker | bool | None
    #: Per-model retry budget: ``notdiamond.RetryBudget(...)``, ``True`` (the defaults) or
    #: ``None``/``False`` (off, the default).
    retry_budget: RetryBudget | bool | None
    #: Seconds from sending a streamed attempt to its first chunk; one number or per model (a dict
    #: like ``timeout``). No first chunk in time: a timeout of that attempt. Default none.
    first_chunk_timeout: float | Mapping[str, float | None] | None
    #: Hedged requests (async clients): ``notdiamond.Hedge(delay=2.0, max_extra=1)`` races a slow
    #: attempt with one on the next model; ``True`` (the defaults) or ``None``/``False`` (off, the
    #: default).
    hedge: Hedge | bool | None
    #: Where the breaker's and the budget's state live: ``None`` (this process's memory, the
    #: default) or a store shared by processes, ``notdiamond.RedisState(...)``.
    state: HealthStore | None


def init(
    client: ClientsInput,
    models: ModelsInput,
    max_retries: int | Mapping[str, int] = DEFAULT_MAX_RETRIES,
    timeout: float | Mapping[str, float] = DEFAULT_TIMEOUT,
    model_messages: MessagesInput | Mapping[str, MessagesInput] | None = None,
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
        client: One client or a sequence of them (a list, a tuple): at most one per provider
            (``OpenAI`` -> ``openai``, ``AzureOpenAI`` -> ``azure``), all sync or all async.
        models: ``["openai/gpt-4o", "azure/gpt-4o"]`` in priority order, or
            ``{"openai/gpt-4o": 0.9, "azure/gpt-4o": 0.1}`` to balance by weight.
        max_retries: Attempts per model (1 = one try, then fall back); one number or per model.
        timeout: Seconds per attempt; one number or per model.
        model_messages: Messages prepended to the caller's on every attempt of a model: the
            SDK's own ``ChatCompletionMessageParam`` dicts; one list, or one per model key.
        api_key: Not Diamond API key (falls back to ``NOTDIAMOND_API_KEY``); sends nothing.
        async_mode: Informational: the clients' own type decides sync or async.
        backoff: The wait after the k-th failed attempt of a model is ``backoff ** k`` seconds.
        **options: Keyword-only extras, see :class:`InitOptions`.

    Returns:
        The :class:`RetryManager`; ``close()`` it (or use ``with``) to restore the clients.

    Raises:
        TypeError, ValueError: for any invalid input, naming the fix; nothing is patched then.

    A managed call that fails on every model raises its last attempt's own SDK error;
    :func:`notdiamond.failures_of` returns every failed attempt of the call from it.
    """
    check_option_names(options, parameters=_PARAMETERS)

    clients, is_async = _clients_by_provider(client)
    if async_mode != is_async:
        logger.warning(
            "init: async_mode=%s but the clients are %s; managing them as %s clients.",
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
    resolved = parse_options(options, is_async=is_async, models=config.order)
    check_hedge_models(resolved["hedge"], config)
    store = resolved.pop("state")
    bind_clock = getattr(store, "bind_clock", None)
    if bind_clock is not None:  # a shared store maps remaining durations onto this clock
        bind_clock(resolved["clock"])
    strategies = assemble(
        config.order,
        breaker=resolved.pop("circuit_breaker"),
        budget=resolved.pop("retry_budget"),
        retry_after_cap=resolved["retry_after_cap"],
        report=resolved["observer"],
        store=store,
    )
    manager = RetryManager(
        config,
        clients,
        is_async=is_async,
        api_key=api_key if api_key is not None else os.environ.get("NOTDIAMOND_API_KEY"),
        first_chunk_timeouts=resolved.pop("first_chunk_timeout"),
        **resolved,
        strategies=strategies,
    )
    manager._install()
    return manager


def _clients_by_provider(client: object) -> tuple[dict[Provider, Any], bool]:
    given = list(client) if isinstance(client, Sequence) else [client]
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


#: ``init``'s named parameters: a misspelt one lands in ``**options`` and is suggested from here.
_PARAMETERS = tuple(
    name
    for name, p in inspect.signature(init).parameters.items()
    if p.kind is not inspect.Parameter.VAR_KEYWORD
)
