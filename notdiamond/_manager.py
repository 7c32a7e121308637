"""The manager of one ``init``: its configuration, one wrapper per client, selection and closing."""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _patching
from ._assembly import Pipeline
from ._config import Config, ModelSettings
from ._events import Observer
from ._health.snapshot import ModelHealth, model_health
from ._pipeline import current_call
from ._policy import RetryPolicy, build_policy
from ._sdk import CHAT_COMPLETIONS_PATH, Provider, set_request_fields
from ._selection import ModelSelector, PriorityOrder, WeightedDraw
from ._strategies.breaker import CircuitBreakerStrategy
from ._strategies.budget import RetryBudgetStrategy
from ._strategy import Strategy

if TYPE_CHECKING:
    from ._call import CallState
    from ._sdk import FinalRequestOptions


class BaseRetryWrapper:
    """Serves one client: routes its chat completions and sends each attempt to it."""

    def __init__(self, manager: RetryManager, client: Any, provider: Provider) -> None:
        self._manager = manager
        self.pipeline = manager.pipeline
        self._client = client
        self.provider: Provider = provider
        self._request = _patching.original_class(client).request
        self._sdk_retries_off = not manager.sdk_retries
        self._plain = type(self)._default_create is BaseRetryWrapper._default_create
        # What a call may name: "<provider>/<model>" for any configured model, and the bare model
        # name for this client's own provider.
        self._routes: dict[str, str] = {key: key for key in manager.settings}
        for key, settings in manager.settings.items():
            if settings.provider == provider:
                self._routes.setdefault(settings.model, key)
        self._selector = manager._selector
        if self._selector.fixed_first is not None:  # a list: "notdiamond" is always its head
            self._routes["notdiamond"] = self._selector.fixed_first

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
        key = self._routes.get(model)
        if key is None and model == "notdiamond":
            return self._selector.first()  # a weighted draw
        return key

    def _settings(self, name: str) -> ModelSettings:
        key = self._routes.get(name) if name != "notdiamond" else None
        if key is None:
            raise ValueError(
                f"{name!r} is not a configured model; configured: {list(self._manager.settings)}."
            )
        return self._manager.settings[key]

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


class AsyncRetryWrapper(BaseRetryWrapper):
    """Wrapper of an async client (``AsyncOpenAI``, ``AsyncAzureOpenAI``).

    Its ``_default_create`` returns the SDK's coroutine, which the async pipeline awaits.
    """


class RetryManager:
    """What ``notdiamond.init`` returns: owns the configuration and the patched clients.

    ``close()`` (or leaving ``with notdiamond.init(...) as manager:``) restores every client.
    """

    def __init__(
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
        first_chunk_timeouts: Mapping[str, float] | None = None,
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
        self.pipeline = Pipeline(
            settings=self.settings,
            next_model=self._selector.next_model,
            policies=self.policies,
            strategies=strategies,
            clock=clock,
            sleep=sleep,
            observer=observer,
            deadline=deadline,
            first_chunk_timeouts=first_chunk_timeouts,
        )
        wrapper_cls = AsyncRetryWrapper if is_async else RetryWrapper
        self.wrappers: dict[Provider, BaseRetryWrapper] = {
            provider: wrapper_cls(self, client, provider) for provider, client in clients.items()
        }
        self.wrapper_of: dict[str, BaseRetryWrapper] = {
            key: self.wrappers[s.provider] for key, s in self.settings.items()
        }
        self.pipeline.wrapper_of.update(self.wrapper_of)
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

    def close(self) -> None:
        """Restore every client (and copies made from it) that this manager still serves."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for wrapper in self.wrappers.values():
                _patching.uninstall(wrapper._client, wrapper)

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
