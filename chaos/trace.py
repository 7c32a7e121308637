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


class Ending(NamedTuple):
    request: int
    #: ``response`` (complete), ``stream_error`` (answer began, then broke), ``error`` (raised).
    kind: str
    error: str | None
    at: float


@dataclass
class Trace:
    http: list[HttpRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    endings: list[Ending] = field(default_factory=list)
    issued: int = 0
    #: Most requests in flight at once (async runs).
    max_in_flight: int = 0

    def observer(self, event: Any) -> None:
        """The runtime's ``observer=``: records an ``AttemptEvent``."""
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
