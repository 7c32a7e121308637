"""Stream faults (SPEC 4.9, issue 9 section 3): what a streamed 200 does before and after its
first chunk.

A provider's ``stream_faults`` is a mix, drawn once per streamed success (besides ``stream_cut``):

* ``stall``: the response headers arrive, then nothing for ``seconds`` (simulated) before the
  first chunk; beyond the model's ``first_chunk_timeout`` the attempt is a timeout (transient);
* ``break_before``: the connection drops before the first chunk (a connection error, transient);
* ``error_event``: the first event is ``data: {"error": {...}}`` naming ``status`` (classified
  like that HTTP status: 5xx and 429 transient, 4xx permanent);
* ``break_after``: ``after_chunks`` chunks arrive, then the connection drops (after the first
  chunk: the caller receives an error, never a replay).

The bodies themselves are served by :mod:`chaos.stream_bodies` (in process) and
:mod:`chaos.server` (real sockets).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

#: The kinds, in drawing order; also the ``source`` of the trace record of such an answer.
STREAM_FAULT_KINDS: Final = ("stall", "break_before", "error_event", "break_after")
#: The kinds that end (or may end) the attempt before its first chunk.
BEFORE_FIRST_CHUNK: Final = frozenset({"stall", "break_before", "error_event"})
#: Statuses an error event may name.
EVENT_STATUSES: Final = (
    "400",
    "401",
    "403",
    "404",
    "408",
    "409",
    "422",
    "429",
    "500",
    "502",
    "503",
)


def _error(message: str) -> Exception:
    from .faults import FaultModelError

    return FaultModelError(message)


def _probability(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise _error(f"{where}: a probability in [0, 1], got {value!r}.")
    return float(value)


def _table(where: str, raw: object, allowed: set[str]) -> Mapping[str, Any]:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return {"probability": raw}
    if not isinstance(raw, Mapping):
        raise _error(f"{where}: a probability, or an object with 'probability' and {allowed}.")
    unknown = sorted(set(raw) - allowed - {"probability"})
    if unknown:
        raise _error(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}.")
    if "probability" not in raw:
        raise _error(f"{where}: missing 'probability'.")
    return raw


@dataclass(frozen=True, slots=True)
class StreamFaults:
    """The stream fault mix of one provider (probabilities per streamed success)."""

    stall: float = 0.0
    stall_seconds: float = 0.0
    break_before: float = 0.0
    error_event: float = 0.0
    error_status: str = "503"
    break_after: float = 0.0
    after_chunks: int = 2

    @classmethod
    def parse(cls, where: str, raw: object) -> StreamFaults:
        from .transport import STREAM_CHUNKS

        if not isinstance(raw, Mapping):
            raise _error(
                f"{where}: expected an object such as "
                '{"stall": {"probability": 0.1, "seconds": 5}, "break_before": 0.1, '
                '"error_event": {"probability": 0.05, "status": "503"}, '
                '"break_after": {"probability": 0.1, "after_chunks": 2}}.'
            )
        unknown = sorted(set(raw) - set(STREAM_FAULT_KINDS))
        if unknown:
            raise _error(f"{where}: unknown fault(s) {unknown}; use {list(STREAM_FAULT_KINDS)}.")
        kw: dict[str, Any] = {}
        if "stall" in raw:
            t = _table(f"{where}.stall", raw["stall"], {"seconds"})
            kw["stall"] = _probability(f"{where}.stall.probability", t["probability"])
            seconds = t.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise _error(f"{where}.stall.seconds: simulated seconds > 0, got {seconds!r}.")
            kw["stall_seconds"] = float(seconds)
        if "break_before" in raw:
            t = _table(f"{where}.break_before", raw["break_before"], set())
            kw["break_before"] = _probability(f"{where}.break_before", t["probability"])
        if "error_event" in raw:
            t = _table(f"{where}.error_event", raw["error_event"], {"status"})
            kw["error_event"] = _probability(f"{where}.error_event", t["probability"])
            status = str(t.get("status", "503"))
            if status not in EVENT_STATUSES:
                raise _error(
                    f"{where}.error_event.status: {status!r}; use one of {EVENT_STATUSES}."
                )
            kw["error_status"] = status
        if "break_after" in raw:
            t = _table(f"{where}.break_after", raw["break_after"], {"after_chunks"})
            kw["break_after"] = _probability(f"{where}.break_after", t["probability"])
            k = t.get("after_chunks", 2)
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= STREAM_CHUNKS:
                raise _error(
                    f"{where}.break_after.after_chunks: a whole number in [1, {STREAM_CHUNKS}] "
                    f"(0 is break_before), got {k!r}."
                )
            kw["after_chunks"] = k
        faults = cls(**kw)
        total = sum(faults.probability(kind) for kind in STREAM_FAULT_KINDS)
        if total > 1 + 1e-12:
            raise _error(f"{where}: probabilities add up to {total:g} > 1.")
        return faults

    def probability(self, kind: str) -> float:
        return float(getattr(self, kind))

    def draw(self, rng: random.Random) -> str | None:
        """One draw: the fault kind of a streamed success, or None (a clean stream)."""
        u = rng.random()
        acc = 0.0
        for kind in STREAM_FAULT_KINDS:
            acc += self.probability(kind)
            if u < acc:
                return kind
        return None

    def cut_after(self, kind: str) -> int | None:
        """The chunk after which the connection drops, for ``kind``."""
        if kind == "break_before":
            return 0
        if kind == "break_after":
            return self.after_chunks
        return None

    def describe(self) -> str:
        parts = []
        if self.stall:
            parts.append(f"stall {self.stall_seconds:g} s ({self.stall:.0%})")
        if self.break_before:
            parts.append(f"break before the first chunk ({self.break_before:.0%})")
        if self.error_event:
            parts.append(f"error event {self.error_status} ({self.error_event:.0%})")
        if self.break_after:
            parts.append(f"break after {self.after_chunks} chunks ({self.break_after:.0%})")
        return ", ".join(parts)


def error_event(status: str) -> bytes:
    """The SSE error event sent as a stream's first event, naming ``status``."""
    body = {
        "error": {
            "message": f"chaos: injected error event {status}",
            "type": "server_error" if status.startswith("5") else "invalid_request_error",
            "status": int(status),
        }
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
