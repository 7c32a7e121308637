"""Observability: OpenTelemetry spans (optional) and the structured fields of the library's logs.

Tracing is on when ``opentelemetry-api`` is installed (``pip install "notdiamond[otel]"``) and an
SDK tracer provider is set (``opentelemetry.trace.set_tracer_provider``) before ``init``; that is
detected once, at ``init``. When it is off, nothing here runs on a call: the pipeline holds no
tracing strategy and the clients' hook calls the plain driver.

When on, each managed call is one span (``chat <requested model>``, kind CLIENT) and each attempt
one child span (``chat <model>``) with the GenAI semantic-convention attributes
(``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.provider.name``, ``error.type``)
and the library's own: ``notdiamond.model_key``, ``notdiamond.attempt``, ``notdiamond.decision``
(``success``, ``retry``, ``fallback``, ``raise``) and ``notdiamond.wait`` (seconds before the
retry). The attempt span is the current span while the attempt is sent, so HTTP instrumentation
(httpx) nests under it. Spans carry no message content and no keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import openai

from ._hints import near_miss
from ._log import log_fields, logger
from ._strategy import Strategy

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from ._call import CallState
    from ._config import ModelSettings
    from ._events import AttemptEvent
    from ._strategy import CallView


#: ``gen_ai.provider.name`` of each provider (the semantic conventions' well-known values).
GEN_AI_PROVIDER: Final[dict[str, str]] = {"openai": "openai", "azure": "azure.ai.openai"}

SyncDriver = Callable[["CallState"], Any]
AsyncDriver = Callable[["CallState"], Coroutine[Any, Any, Any]]


def error_type(exc: BaseException) -> str:
    """``error.type``: the exception's fully qualified class name (low cardinality)."""
    cls = type(exc)
    module = cls.__module__
    # The SDK defines its errors in private modules and exports them from ``openai``.
    if module.startswith("openai.") and getattr(openai, cls.__name__, None) is cls:
        module = "openai"
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def detect_tracer() -> Tracer | None:
    """The library's tracer if OpenTelemetry is installed and a tracer provider is configured."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None  # nothing configured: every span would be dropped, so make none
    from . import __version__

    tracer = provider.get_tracer("notdiamond", __version__)
    return None if isinstance(tracer, trace.NoOpTracer) else tracer  # e.g. OTEL_SDK_DISABLED


class Tracing(Strategy):
    """Spans for calls and attempts. A strategy for the attempt's start and abandonment, an
    observer for its outcome (the decision and the wait), and a wrapper of the drivers for the
    call span."""

    name = "tracing"

    def __init__(self, tracer: Tracer, settings: Mapping[str, ModelSettings]) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._settings = settings
        self._context = context
        self._set_span_in_context = trace.set_span_in_context
        self._client_kind = SpanKind.CLIENT
        self._error_status: Callable[[str], Status] = lambda text: Status(StatusCode.ERROR, text)
        #: The attempt span in flight in this thread or task, and the token of its context.
        self._attempt: ContextVar[tuple[Span, object] | None] = ContextVar(
            "notdiamond_attempt_span", default=None
        )

    # -- the call span -----------------------------------------------------------------------
    def _call_span(self, call: CallState) -> Any:
        requested = call.body.get("model")
        return self._tracer.start_as_current_span(
            f"chat {requested}",
            kind=self._client_kind,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": str(requested),
                "notdiamond.call_id": call.call_id,
            },
            record_exception=False,  # an exception's text may quote the request
            set_status_on_exception=False,
        )

    def _call_ended(self, span: Span, call: CallState, error: BaseException | None) -> None:
        settings = call.pipeline.settings.get(call.key)
        span.set_attribute("notdiamond.attempts", call.sent)
        if error is None:
            span.set_attribute("notdiamond.model_key", call.key)
            if settings is not None:
                span.set_attribute("gen_ai.provider.name", GEN_AI_PROVIDER[settings.provider])
        else:
            span.set_attribute("error.type", error_type(error))
            span.set_status(self._error_status(type(error).__name__))

    def wrap_sync(self, run: SyncDriver) -> SyncDriver:
        def traced(call: CallState) -> Any:
            with self._call_span(call) as span:
                try:
                    result = run(call)
                except BaseException as exc:
                    self._call_ended(span, call, exc)
                    raise
                self._call_ended(span, call, None)
                return result

        return traced

    def wrap_async(self, run: AsyncDriver) -> AsyncDriver:
        async def traced(call: CallState) -> Any:
            with self._call_span(call) as span:
                try:
                    result = await run(call)
                except BaseException as exc:
                    self._call_ended(span, call, exc)
                    raise
                self._call_ended(span, call, None)
                return result

        return traced

    # -- attempt spans -----------------------------------------------------------------------
    def attempt_started(self, call: CallView, key: str, attempt: int, now: float) -> None:
        settings = self._settings[key]
        span = self._tracer.start_span(
            f"chat {settings.model}",
            kind=self._client_kind,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": settings.model,
                "gen_ai.provider.name": GEN_AI_PROVIDER[settings.provider],
                "notdiamond.model_key": key,
                "notdiamond.attempt": attempt,
                "notdiamond.call_id": call.call_id,
            },
        )
        token = self._context.attach(self._set_span_in_context(span))
        self._attempt.set((span, token))

    def attempt_abandoned(self, call: CallView, key: str) -> None:
        self._end_attempt("abandoned", "cancelled", None)

    def observe(self, event: AttemptEvent) -> None:
        """The attempt's outcome (the manager's observer, called before the user's)."""
        error = event.error
        self._end_attempt(
            event.decision,
            None if error is None else error_type(error),
            event.next_wait,
        )

    def _end_attempt(self, decision: str, failure: str | None, wait: float | None) -> None:
        current = self._attempt.get()
        if current is None:
            return
        span, token = current
        self._attempt.set(None)
        span.set_attribute("notdiamond.decision", decision)
        if wait is not None:
            span.set_attribute("notdiamond.wait", wait)
        if failure is not None:
            span.set_attribute("error.type", failure)
            span.set_status(self._error_status(failure.rsplit(".", 1)[-1]))
        span.end()
        self._context.detach(token)  # type: ignore[arg-type]


def with_tracing(
    strategies: Sequence[Strategy],
    observer: Callable[[AttemptEvent], object] | None,
    settings: Mapping[str, ModelSettings],
) -> tuple[Tracing | None, tuple[Strategy, ...], Callable[[AttemptEvent], object] | None]:
    """Add tracing to a manager's strategies and observer if it is configured (checked once)."""
    tracer = detect_tracer()
    if tracer is None:
        return None, tuple(strategies), observer
    tracing = Tracing(tracer, settings)
    if observer is None:
        return tracing, (tracing, *strategies), tracing.observe

    user_observer = observer

    def both(event: AttemptEvent) -> None:
        tracing.observe(event)
        user_observer(event)

    return tracing, (tracing, *strategies), both


class PassThrough:
    """What a client's hook does for a chat completion whose model is not configured.

    The call goes to the SDK unchanged (SPEC 4.1). A DEBUG line says so; a name one typo away
    (Damerau-Levenshtein distance 1) from a configured key, a configured bare name of this
    client's provider, or ``notdiamond`` gets a WARNING, once per name.
    """

    #: Names remembered for the once-per-name warning; past this many, no new name is checked.
    MAX_NAMES: Final = 1024

    def __init__(self, provider: str, candidates: Sequence[str]) -> None:
        self._provider = provider
        self._candidates = tuple(dict.fromkeys([*candidates, "notdiamond"]))
        self._seen: set[str] = set()

    def __call__(self, model: str) -> None:
        if model not in self._seen and len(self._seen) < self.MAX_NAMES:
            self._seen.add(model)
            meant = near_miss(model, self._candidates)
            if meant is not None:
                logger.warning(
                    "model %r is not configured and goes to the %s client unchanged; did you "
                    "mean %r? (shown once per name)",
                    model,
                    self._provider,
                    meant,
                    extra=log_fields(None, None, model),
                )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "model %r is not configured: the call passes through to the %s client unchanged",
                model,
                self._provider,
                extra=log_fields(None, None, model),
            )
