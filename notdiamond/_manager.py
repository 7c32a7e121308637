"""The manager of one ``init``: its configuration, one wrapper per client, selection and closing."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, overload

from . import _patching, _replaced
from ._assembly import Pipeline
from ._config import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    Config,
    ModelSettings,
    parse_config,
)
from ._events import Observer
from ._health.snapshot import ModelHealth, model_health
from ._hedge_options import Hedge, Hedging
from ._hedging import run_async_hedged
from ._pipeline import current_call, run_async, run_sync
from ._policy import RetryPolicy, build_policy
from ._sdk import CHAT_COMPLETIONS_PATH, Provider, classify_client, set_request_fields
from ._selection import ModelSelector, PriorityOrder, WeightedDraw
from ._strategies.breaker import CircuitBreakerStrategy
from ._strategies.budget import RetryBudgetStrategy
from ._strategy import Strategy
from ._telemetry import PassThrough, with_tracing
from ._types import MessagesInput, ModelsInput

if TYPE_CHECKING:
    from ._call import CallState
    from ._sdk import FinalRequestOptions


class BaseRetryWrapper:
    """Serves one client: routes its chat completions and sends each attempt to it.

    ``notdiamond.init`` builds one per client. The original SDK's seam builds them by hand, with
    the same settings ``init`` takes, and hands them to a manager, which patches their clients::

        wrapper = RetryWrapper(client, models=["openai/gpt-4o-mini", "openai/gpt-4o"], timeout=10.0)
        manager = RetryManager(["openai/gpt-4o-mini", "openai/gpt-4o"], [wrapper])

    A wrapper uses the settings of its own client's provider: keys of other providers in
    ``models`` or in a per-model dict are ignored, and a bare model name (``"gpt-4o"``) as a
    per-model key means that model of this provider.
    """

    #: Which kind of client the class serves (``RetryWrapper``: sync, ``AsyncRetryWrapper``: async).
    is_async: ClassVar[bool | None] = None

    def __init__(
        self,
        client: Any,
        models: ModelsInput,
        max_retries: int | Mapping[str, int] = DEFAULT_MAX_RETRIES,
        timeout: float | Mapping[str, float] = DEFAULT_TIMEOUT,
        model_messages: MessagesInput | Mapping[str, MessagesInput] | None = None,
        api_key: str | None = None,
        backoff: float | Mapping[str, float] = DEFAULT_BACKOFF,
    ) -> None:
        provider, is_async = classify_client(client)
        if self.is_async is not None and is_async != self.is_async:
            raise TypeError(
                f"{type(self).__name__} takes a {'n async' if self.is_async else ' sync'} client, "
                f"got {type(client).__name__}. Use "
                f"{'AsyncRetryWrapper' if is_async else 'RetryWrapper'} for it."
            )
        if api_key is not None and not isinstance(api_key, str):
            raise TypeError("api_key must be a string (or None to read NOTDIAMOND_API_KEY).")
        self._client = client
        self.provider = provider
        self.api_key = api_key
        own = _own_settings(
            provider,
            models,
            max_retries=max_retries,
            timeout=timeout,
            model_messages=model_messages,
            backoff=backoff,
        )
        # Validated now (the errors of ``init``), used when a manager takes the wrapper over.
        self._config = parse_config(**own, available_providers=frozenset({provider}))
        self._routes: dict[str, str] = {key: key for key in self._config.settings}
        self._routes.update({s.model: key for key, s in self._config.settings.items()})
        self._manager: RetryManager | None = None

    @classmethod
    def _for(cls, manager: RetryManager, client: Any, provider: Provider) -> BaseRetryWrapper:
        """The wrapper ``init`` builds: settings come from the manager's configuration."""
        wrapper = cls.__new__(cls)
        wrapper._client = client
        wrapper.provider = provider
        wrapper.api_key = None
        wrapper._manager = None
        wrapper._attach(manager)
        return wrapper

    def _attach(self, manager: RetryManager) -> None:
        """Serve ``manager``: its pipeline, settings and model choice."""
        client, provider = self._client, self.provider
        self._manager = manager
        self.pipeline = manager.pipeline
        self._request = _patching.original_class(client).request
        self._sdk_retries_off = not manager.sdk_retries
        self._plain = type(self)._default_create is BaseRetryWrapper._default_create
        #: The client's ``chat.completions.create`` if something replaced it before (a mock).
        self._replacement = _replaced.replaced_create(client)
        self._entry: Callable[..., Any] | None = None
        if self._replacement is not None:
            self._plain = False  # every attempt goes through _default_create, to the replacement
            self.route = self._route_outside_attempts  # type: ignore[method-assign]
        # What a call may name: "<provider>/<model>" for any configured model, and the bare model
        # name for this client's own provider.
        self._routes = {key: key for key in manager.settings}
        for key, settings in manager.settings.items():
            if settings.provider == provider:
                self._routes.setdefault(settings.model, key)
        self._selector = manager._selector
        if self._selector.fixed_first is not None:  # a list: "notdiamond" is always its head
            self._routes["notdiamond"] = self._selector.fixed_first
        #: Runs a routed call to its result: the pipeline's driver, traced when tracing is on.
        self.drive = manager.driver
        self._pass_through = PassThrough(provider, list(self._routes))

    def route(self, options: FinalRequestOptions) -> str | None:
        """The first model key of a managed call, or ``None`` to pass the request through."""
        if options.url != CHAT_COMPLETIONS_PATH or options.method != "post":
            return None
        body = options.json_data
        if not isinstance(body, dict):
            return None
        model = body.get("model")
        if not isinstance(model, str):
            return None
        key = self._routes.get(model)  # route_model, inlined: this runs on every call
        if key is None:
            if model == "notdiamond":
                return self._selector.first()  # a weighted draw
            self._pass_through(model)
        return key

    def route_model(self, model: str) -> str | None:
        """The first model key of a call naming ``model``, or ``None`` to pass it through."""
        key = self._routes.get(model)
        if key is None:
            if model == "notdiamond":
                return self._selector.first()  # a weighted draw
            self._pass_through(model)
        return key

    def _route_outside_attempts(self, options: FinalRequestOptions) -> str | None:
        """``route`` of a client whose ``create`` was replaced: the request a replacement makes
        during an attempt (through the SDK's own ``create``) is that attempt: it passes."""
        call = current_call.get()
        if call is not None and call.cast_to is _replaced.VIA_REPLACEMENT and call.origin is self:
            if self._sdk_retries_off:
                options.__dict__["max_retries"] = 0
            return None
        return BaseRetryWrapper.route(self, options)

    def _settings(self, name: str) -> ModelSettings:
        settings = self._config.settings if self._manager is None else self._manager.settings
        key = self._routes.get(name) if name != "notdiamond" else None
        if key is None:
            raise ValueError(f"{name!r} is not a configured model; configured: {list(settings)}.")
        return settings[key]

    def get_timeout(self, name: str) -> float:
        return self._settings(name).timeout

    def get_max_retries(self, name: str) -> int:
        return self._settings(name).max_attempts

    def get_backoff(self, name: str) -> float:
        return self._settings(name).backoff

    def _default_create(self, **kwargs: Any) -> Any:
        """Send one attempt: ``kwargs`` are exactly its ``create`` arguments (model, messages, ...).

        The pipeline calls it once per attempt whenever it has been replaced (``patch.object``)
        or overridden; the call's request options come from the context variable the pipeline
        sets around it. Otherwise the pipeline calls :meth:`_send` directly, which is the same
        thing without re-packing the arguments. For an async client this returns the SDK's
        coroutine (the caller awaits it), so one definition serves both kinds of client.
        """
        call = current_call.get()
        if call is None:
            raise RuntimeError(
                "_default_create sends one attempt of a managed call and is called by notdiamond; "
                "call client.chat.completions.create(...) instead."
            )
        if call.cast_to is _replaced.VIA_REPLACEMENT:
            assert self._replacement is not None
            return self._replacement(**kwargs)
        return self._send(call, kwargs)

    def _send(self, call: CallState, kwargs: dict[str, Any]) -> Any:
        """Send ``call``'s attempt with ``kwargs`` (a dict this method may consume)."""
        set_request_fields(call.options, kwargs.pop("timeout"), kwargs, self._sdk_retries_off)
        return self._request(
            call.client if call.origin is self else self._client,
            call.cast_to,
            call.options,
            stream=call.stream,
            stream_cls=call.stream_cls,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider!r} client={type(self._client).__name__}>"


class RetryWrapper(BaseRetryWrapper):
    """Wrapper of a sync client (``OpenAI``, ``AzureOpenAI``)."""

    is_async = False


class AsyncRetryWrapper(BaseRetryWrapper):
    """Wrapper of an async client (``AsyncOpenAI``, ``AsyncAzureOpenAI``).

    Its ``_default_create`` returns the SDK's coroutine, which the async pipeline awaits.
    """

    is_async = True


class RetryManager:
    """What ``notdiamond.init`` returns: owns the configuration and the patched clients.

    ``close()`` (or leaving ``with``/``async with notdiamond.init(...) as manager:``) restores
    every client. ``RetryManager(models, [wrapper, ...])`` is the original SDK's seam: it takes
    over wrappers built by hand and patches their clients as ``init`` would (with ``init``'s
    defaults for every keyword-only option).
    """

    @overload
    def __init__(self, models: ModelsInput, wrappers: Sequence[BaseRetryWrapper], /) -> None: ...

    @overload
    def __init__(
        self,
        config: Config,
        clients: Mapping[Provider, Any],
        /,
        *,
        is_async: bool,
        api_key: str | None,
        seed: int | None,
        clock: Callable[[], float],
        sleep: Callable[[float], object] | Callable[[float], Awaitable[object]],
        sdk_retries: bool,
        retry_after_cap: float,
        jitter: float,
        observer: Observer | None,
        deadline: float | None = None,
        strategies: tuple[Strategy, ...] = (),
        first_chunk_timeouts: Mapping[str, float] | None = None,
        hedge: Hedge | None = None,
    ) -> None: ...

    def __init__(self, first: Any, second: Any, /, **settings: Any) -> None:
        if isinstance(first, Config):
            self._setup(first, second, **settings)
        elif settings:
            raise TypeError(
                "RetryManager(models, wrappers) takes no other arguments; to set options, use "
                "notdiamond.init(clients, models, ...)."
            )
        else:
            self._take_over(first, second)

    def _take_over(self, models: ModelsInput, wrappers: Sequence[BaseRetryWrapper]) -> None:
        """Manage ``wrappers`` (built by hand) and patch their clients, as ``init`` would."""
        from ._options import parse_options

        given = list(wrappers) if isinstance(wrappers, Sequence) else [wrappers]
        if not given or not all(isinstance(w, BaseRetryWrapper) for w in given):
            raise TypeError(
                "RetryManager(models, wrappers): wrappers is a list of RetryWrapper or "
                "AsyncRetryWrapper objects, e.g. RetryManager(models, [RetryWrapper(client, models)])."
            )
        by_provider: dict[Provider, BaseRetryWrapper] = {}
        for wrapper in given:
            if wrapper.provider in by_provider or wrapper._manager is not None:
                raise ValueError(
                    f"RetryManager: {wrapper!r} is listed twice, already managed, or a second "
                    f"wrapper for provider {wrapper.provider!r}. Give one wrapper per client."
                )
            by_provider[wrapper.provider] = wrapper
        kinds = {type(w).is_async for w in given}
        if len(kinds) > 1:
            raise ValueError(
                "RetryManager: sync and async wrappers are mixed; make one manager for each."
            )
        is_async = bool(kinds.pop())
        settings: dict[str, dict[str, Any]] = {
            name: {} for name in ("max_retries", "timeout", "backoff", "model_messages")
        }
        for wrapper in given:  # each wrapper's settings, for the keys of its own provider
            for key, s in wrapper._config.settings.items():
                settings["max_retries"][key] = s.max_attempts
                settings["timeout"][key] = s.timeout
                settings["backoff"][key] = s.backoff
                settings["model_messages"][key] = list(s.messages)
        config = parse_config(  # a model of a provider without a wrapper is refused, as in init
            models,
            **{name: _only(values, models) for name, values in settings.items()},
            available_providers=frozenset(by_provider),
        )
        options = parse_options({}, is_async=is_async, models=config.order)
        options.pop("circuit_breaker")
        options.pop("retry_budget")
        options.pop("state")
        first_chunk = options.pop("first_chunk_timeout")
        api_key = next((w.api_key for w in given if w.api_key is not None), None)
        self._setup(
            config,
            {p: w._client for p, w in by_provider.items()},
            is_async=is_async,
            api_key=api_key if api_key is not None else os.environ.get("NOTDIAMOND_API_KEY"),
            wrappers=by_provider,
            first_chunk_timeouts=first_chunk,
            **options,
        )
        self._install()

    def _setup(
        self,
        config: Config,
        clients: Mapping[Provider, Any],
        *,
        is_async: bool,
        api_key: str | None,
        seed: int | None,
        clock: Callable[[], float],
        sleep: Callable[[float], object] | Callable[[float], Awaitable[object]],
        sdk_retries: bool,
        retry_after_cap: float,
        jitter: float,
        observer: Observer | None,
        deadline: float | None = None,
        strategies: tuple[Strategy, ...] = (),
        wrappers: Mapping[Provider, BaseRetryWrapper] | None = None,
        first_chunk_timeouts: Mapping[str, float] | None = None,
        hedge: Hedge | None = None,
    ) -> None:
        self.config = config
        self.settings: Mapping[str, ModelSettings] = config.settings
        self.is_async = is_async
        self._api_key = api_key
        self.clock = clock
        self.sleep: Any = sleep
        self.sdk_retries = sdk_retries
        self.observer = observer
        self.rng = random.Random(seed)
        # Jitter has its own generator, so turning it on does not change the selection sequence.
        self._jitter_rng = random.Random(None if seed is None else f"jitter:{seed}")
        self._jitter_lock = threading.Lock()
        self._selector: ModelSelector = (
            PriorityOrder(config.order)
            if config.weights is None
            else WeightedDraw(config.order, config.weights, self.rng)
        )
        self.policies: dict[str, RetryPolicy] = {
            key: build_policy(
                s, retry_after_cap=retry_after_cap, jitter=jitter, uniform=self._jitter_uniform
            )
            for key, s in self.settings.items()
        }
        self.strategies = strategies
        # Tracing, when OpenTelemetry is configured: one more strategy and observer (else none).
        tracing, pipeline_strategies, pipeline_observer = with_tracing(
            strategies, observer, self.settings
        )
        self.pipeline = Pipeline(
            settings=self.settings,
            next_model=self._selector.next_model,
            policies=self.policies,
            strategies=pipeline_strategies,
            clock=clock,
            sleep=sleep,
            observer=pipeline_observer,
            deadline=deadline,
            first_chunk_timeouts=first_chunk_timeouts,
            hedge=None if hedge is None else Hedging(hedge, self.settings),
        )
        # The driver of every managed call, chosen once: sync, async, or async hedged.
        drive_async = run_async if hedge is None else run_async_hedged
        self.driver: Any
        if tracing is None:
            self.driver = drive_async if is_async else run_sync
        else:
            self.driver = (
                tracing.wrap_async(drive_async) if is_async else tracing.wrap_sync(run_sync)
            )
        wrapper_cls = AsyncRetryWrapper if is_async else RetryWrapper
        self.wrappers: dict[Provider, BaseRetryWrapper] = {}
        for provider, client in clients.items():
            if wrappers is not None:
                self.wrappers[provider] = wrappers[provider]
                wrappers[provider]._attach(self)
            else:
                self.wrappers[provider] = wrapper_cls._for(self, client, provider)
        self.pipeline.wrapper_of.update(
            {key: self.wrappers[s.provider] for key, s in self.settings.items()}
        )
        self._lock = threading.Lock()
        self._closed = False

    def _jitter_uniform(self) -> float:
        with self._jitter_lock:
            return self._jitter_rng.random()

    # -- the seed's test seams -------------------------------------------------------------
    def get_wrapper(self, model: str) -> BaseRetryWrapper:
        """The wrapper of the client that serves ``model`` (a configured ``<provider>/<model>``)."""
        settings = self.settings.get(model)
        if settings is None:
            raise ValueError(
                f"{model!r} is not a configured model; configured: {list(self.settings)}."
            )
        return self.wrappers[settings.provider]

    def get_next_model(self, failed_keys: Collection[str]) -> str | None:
        """The model to fall back to after ``failed_keys``; ``None`` when none is left."""
        return self._selector.next_model(failed_keys)

    def health(self) -> dict[str, ModelHealth]:
        """Each model's breaker state (closed, open, half_open), until when, and the counts behind
        it (breaker and retry budget), as of the manager's clock. For dashboards."""
        now = self.clock()
        breakers: dict[str, Any] = {}
        budgets: dict[str, Any] = {}
        for strategy in self.strategies:
            if isinstance(strategy, CircuitBreakerStrategy):
                breakers.update(strategy.health(now))
            elif isinstance(strategy, RetryBudgetStrategy):
                budgets.update(strategy.health(now))
        return model_health(self.models, breakers, budgets)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def models(self) -> tuple[str, ...]:
        return self.config.order

    @property
    def closed(self) -> bool:
        return self._closed

    def _install(self) -> None:
        for wrapper in self.wrappers.values():
            _patching.install(wrapper._client, wrapper)
            if wrapper._replacement is not None:
                wrapper._entry = _replaced.install_entry(wrapper, wrapper._replacement)

    def close(self) -> None:
        """Restore every client (and copies made from it) that this manager still serves."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for wrapper in self.wrappers.values():
                _patching.uninstall(wrapper._client, wrapper)
                if wrapper._entry is not None:
                    _replaced.remove_entry(wrapper, wrapper._entry)

    def __enter__(self) -> RetryManager:
        return self

    async def __aenter__(self) -> RetryManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:  # never shows the API key
        state = "closed" if self._closed else "active"
        return f"<RetryManager {state} models={list(self.config.order)} providers={list(self.wrappers)}>"


def _own_settings(
    provider: Provider,
    models: object,
    **settings: object,
) -> dict[str, Any]:
    """A wrapper's share of ``init``-style settings: its provider's models and their entries.

    Keys of other providers are dropped; a bare model name (``"gpt-4o"``) as a per-model key
    means this provider's model of that name.
    """
    own: dict[str, Any] = {"models": _models_of(models, frozenset({provider}))}
    for name, value in settings.items():
        if isinstance(value, Mapping) and not (name == "model_messages" and "role" in value):
            value = {
                (key if "/" in key else f"{provider}/{key}"): entry
                for key, entry in value.items()
                if not isinstance(key, str) or "/" not in key or key.startswith(f"{provider}/")
            }
        own[name] = value
    return own


def _models_of(models: object, providers: frozenset[str]) -> Any:
    """``models`` (a list or a weights dict) without the keys of providers not in ``providers``.

    Anything else is returned as it is, for ``parse_config`` to refuse with its own message.
    """

    def kept(key: object) -> bool:
        return not isinstance(key, str) or "/" not in key or key.split("/", 1)[0] in providers

    if isinstance(models, Mapping):
        return {key: weight for key, weight in models.items() if kept(key)}
    if isinstance(models, Sequence) and not isinstance(models, str):
        return [key for key in models if kept(key)]
    return models


def _only(values: dict[str, Any], models: object) -> dict[str, Any]:
    keys = set(models) if isinstance(models, Mapping | Sequence) else set()
    return {key: value for key, value in values.items() if key in keys}
