"""Attempt traces: what the fake providers saw, what the runtime reported, how each request ended.

Three views of one run, joined by the harness's request id (sent as the ``x-chaos-request``
header, and kept in a context variable for the runtime's observer):

* :class:`HttpRecord`: every HTTP request a fake provider answered (the ground truth: virtual
  start and end, model, provider, outcome, the Retry-After it sent);
* :class:`AttemptRecord`: every attempt the runtime's ``observer`` reported (decision, wait before);
* :class:`Ending`: how each request ended for its caller (response, stream broken, raised error).
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: The harness's id of the request being served (for the runtime's observer).
current_request: contextvars.ContextVar[int] = contextvars.ContextVar("chaos_request", default=-1)

REQUEST_HEADER = "x-chaos-request"
#: Sent back on every error answer: the index of its :class:`HttpRecord` in ``Trace.http``.
HTTP_ID_HEADER = "x-chaos-http"


class Sent(NamedTuple):
    """What one HTTP request carried, as the fake provider read it."""

    request: int
    key: str
    #: The model as the provider names it (Azure: the deployment in the path).
    model: str
    #: ``model`` in the JSON body.
    body_model: str
    #: ``messages`` in the JSON body, as compact JSON with sorted keys.
    messages: str
    #: The read timeout of the request (the SDK's ``timeout`` extension); None when unknown.
    timeout: float | None
    stream: bool


class HttpRecord(NamedTuple):
    request: int
    key: str
    provider: str
    start: float
    end: float
    #: ``ok`` or an error kind from :data:`chaos.faults.ERROR_KINDS`.
    outcome: str
    #: The wait the response asked for (Retry-After / retry-after-ms), in seconds.
    retry_after: float | None
    #: What produced the outcome: ``ok``, ``mix``, ``outage``, ``rate_limit``, ``timeout``.
    source: str
    stream: bool
    latency: float
    #: ``model`` in the JSON body the provider received.
    body_model: str = ""
    #: ``messages`` the provider received (compact JSON, sorted keys).
    messages: str = ""
    #: The read timeout the request carried (None: not visible, e.g. over real sockets).
    timeout: float | None = None
    #: Index of this record in ``Trace.http`` (error answers carry it as ``x-chaos-http``).
    http_id: int = -1
    #: The header that carried ``retry_after`` (``retry-after``, ``retry-after-ms``).
    retry_after_header: str | None = None


class AttemptRecord(NamedTuple):
    request: int
    call_id: int
    model: str
    provider: str
    attempt: int
    started: float
    finished: float
    wait_before: float
    decision: str
    status_code: int | None
    next_wait: float | None


class Failure(NamedTuple):
    """One entry of ``exc.notdiamond_failures`` on the error a caller received."""

    key: str
    attempt: int
    error: str
    #: ``x-chaos-http`` of the answer the error came from (None: no answer, e.g. a reset).
    http_id: int | None
    #: Whether this entry's exception is the very object the caller received.
    is_raised: bool


class Ending(NamedTuple):
    request: int
    #: ``response`` (complete), ``stream_error`` (answer began, then broke), ``error`` (raised).
    kind: str
    error: str | None
    at: float
    #: Errors: ``x-chaos-http`` of the answer the raised error came from.
    http_id: int | None = None
    #: Errors: ``exc.notdiamond_failures`` as recorded (None: not attached).
    failures: tuple[Failure, ...] | None = None
    #: Errors: whether a note on the exception names the earlier failures.
    noted: bool = False
    #: Responses: the type of what the call returned (``ChatCompletion``, ``Stream``...).
    returned: str | None = None
    #: Streams: the chunks the caller read (``http_id``: the answer they came from).
    chunks: int | None = None
    #: Streams broken mid-answer: the notes on the error.
    notes: tuple[str, ...] = ()


@dataclass
class Trace:
    http: list[HttpRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    endings: list[Ending] = field(default_factory=list)
    issued: int = 0
    #: Most requests in flight at once (async runs).
    max_in_flight: int = 0
    #: Requests the client cancelled before their answer (in process, async): never answered.
    cancelled: list[HttpRecord] = field(default_factory=list)
    #: The circuit breakers' transitions, as the runtime reported them (``BreakerTransition``).
    transitions: list[Any] = field(default_factory=list)
    #: The health strategies' recorded decisions (``chaos.health.HealthRecording``), if any.
    health: Any = None

    def observer(self, event: Any) -> None:
        """The runtime's ``observer=``: records an ``AttemptEvent`` (or a breaker's transition)."""
        if not hasattr(event, "call_id"):  # a notdiamond.BreakerTransition (circuit_breaker=)
            self.transitions.append(event)
            return
        self.attempts.append(
            AttemptRecord(
                current_request.get(),
                event.call_id,
                event.model,
                event.provider,
                event.attempt,
                event.started,
                event.finished,
                event.wait_before,
                event.decision,
                event.status_code,
                event.next_wait,
            )
        )

    def http_by_request(self) -> dict[int, list[HttpRecord]]:
        grouped: dict[int, list[HttpRecord]] = defaultdict(list)
        for rec in self.http:
            grouped[rec.request].append(rec)
        for recs in grouped.values():
            recs.sort(key=lambda r: r.start)
        return grouped

    def attempts_by_request(self) -> dict[int, list[AttemptRecord]]:
        grouped: dict[int, list[AttemptRecord]] = defaultdict(list)
        for rec in self.attempts:
            grouped[rec.request].append(rec)
        return grouped

    def endings_by_request(self) -> dict[int, list[Ending]]:
        grouped: dict[int, list[Ending]] = defaultdict(list)
        for rec in self.endings:
            grouped[rec.request].append(rec)
        return grouped


#: The caller's messages of every request the harness sends (model_messages go before them).
CALLER_MESSAGES: list[dict[str, str]] = [{"role": "user", "content": "chaos"}]


def _http_id(exc: object) -> int | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    raw = headers.get(HTTP_ID_HEADER)
    return int(raw) if raw is not None else None


def error_ending(request: int, exc: BaseException, at: float, kind: str = "error") -> Ending:
    """How a request ended when its call raised ``exc``: the class, the answer it came from, and
    what the runtime attached (``notdiamond_failures``, a note)."""
    attached = getattr(exc, "notdiamond_failures", None)
    failures = None
    if isinstance(attached, tuple):
        failures = tuple(
            Failure(str(key), int(attempt), type(e).__name__, _http_id(e), e is exc)
            for key, attempt, e in attached
        )
    notes = getattr(exc, "__notes__", None) or []
    noted = any("notdiamond" in str(note) for note in notes)
    return Ending(request, kind, type(exc).__name__, at, _http_id(exc), failures, noted)


def response_ending(
    request: int, returned: object, at: float, *, chunks: int | None = None
) -> Ending:
    """A call that returned; for a stream read to its end, ``chunks`` read and the answer's id."""
    http_id = _http_id(returned) if chunks is not None else None
    return Ending(
        request, "response", None, at, http_id, returned=type(returned).__name__, chunks=chunks
    )


def stream_error_ending(
    request: int, exc: BaseException, stream: object, chunks: int, at: float
) -> Ending:
    """A stream that broke while its caller read it, after ``chunks`` chunks."""
    notes = tuple(str(n) for n in getattr(exc, "__notes__", None) or [])
    return Ending(
        request,
        "stream_error",
        type(exc).__name__,
        at,
        _http_id(stream),
        chunks=chunks,
        notes=notes,
    )
