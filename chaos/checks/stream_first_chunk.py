"""Streams (SPEC 4.9): the first chunk is part of the attempt.

Two exact checks over the streamed requests of a run:

* ``stream_first_chunk``: an answer that stalled beyond ``first_chunk_timeout``, broke, or sent an
  error event before its first chunk is a failed attempt (a timeout, a connection error, the status
  the event names) and the policy is replayed over those outcomes (retry a transient failure up to
  ``max_retries``, leave the model on a permanent one, fall back while models are left); a call
  that got a stream got it whole, from the answering provider: the chunks the caller read equal
  the chunks that answer sent, and it is the request's last answer (conservation on chunks).
* ``stream_break_after_first``: a stream that broke after ``k >= 1`` chunks reached its caller as
  the SDK's connection error after exactly those ``k`` chunks of that answer, with a note naming
  the model and ``k``, and was never replayed (no further HTTP request for that call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..faults import TRANSIENT_KINDS
from ..results import CheckResult
from ..scenario import Scenario
from ..stream_faults import BEFORE_FIRST_CHUNK
from ..trace import Ending, HttpRecord
from ..transport import STREAM_CHUNKS
from . import register
from .base import Check, RunView, blocks

#: Chunks a caller reads from a complete streamed answer (the final chunk too, not ``[DONE]``).
COMPLETE = STREAM_CHUNKS + 1
#: The SDK errors a stream broken mid-answer may raise (a timeout is a connection error too).
BROKEN_ERRORS = frozenset({"APIConnectionError", "APITimeoutError"})


def effective(rec: HttpRecord, scenario: Scenario) -> str:
    """The attempt's outcome as SPEC 4.9 sees it: ``ok`` once the first chunk arrived, else the
    failure the answer stands for (``read_timeout``, ``reset`` or the status of an error event)."""
    if rec.outcome != "ok" or not rec.stream:
        return rec.outcome
    if rec.source == "stall":
        faults = scenario.providers[rec.key].stream_faults
        limit = scenario.first_chunk_timeouts.get(rec.key)
        assert faults is not None
        if limit is not None and rec.latency + faults.stall_seconds > limit:
            return "read_timeout"
        return "ok"
    if rec.source == "break_before":
        return "reset"
    if rec.source == "error_event":
        faults = scenario.providers[rec.key].stream_faults
        assert faults is not None
        return faults.error_status
    if rec.source == "cut":
        cut = scenario.providers[rec.key].stream_cut
        if cut is not None and cut.after_chunks == 0:
            return "reset"
    return "ok"


def chunks_sent(rec: HttpRecord, scenario: Scenario) -> int | None:
    """Chunks a successful streamed answer sent before it ended (None: it broke before any)."""
    if rec.source == "break_after":
        faults = scenario.providers[rec.key].stream_faults
        assert faults is not None
        return faults.after_chunks
    if rec.source == "cut":
        cut = scenario.providers[rec.key].stream_cut
        assert cut is not None
        return cut.after_chunks or None
    return COMPLETE


def _stream_fault_rate(scenario: Scenario, kinds: frozenset[str]) -> float:
    """P(the first attempt of a streamed request meets one of ``kinds``), its first model."""
    key = scenario.first_key() or scenario.order[0]
    f = scenario.providers[key]
    sf = f.stream_faults
    if sf is None:
        return 0.0
    served = f.latency.cdf(scenario.timeouts[key]) * (1 - sum(f.errors.values()))
    return scenario.traffic.stream * served * sum(sf.probability(k) for k in kinds)


class _StreamCheck(Check):
    needs = frozenset({"http", "endings"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.traffic.stream > 0 and any(
            f.stream_faults is not None for f in scenario.providers.values()
        )


@register
class StreamFirstChunk(_StreamCheck):
    name = "stream_first_chunk"
    description = (
        "a stream that stalled beyond first_chunk_timeout, broke or sent an error event before "
        "its first chunk was a failed attempt (retried or fell back per the policy); a caller that "
        "got a stream read every chunk of the last answer, and only it (exact)"
    )

    def predicted_events(self, scenario: Scenario, n: int) -> float | None:
        return n * _stream_fault_rate(scenario, BEFORE_FIRST_CHUNK)

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        problems: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        failed_before = 0
        streamed = 0
        complete = 0

        def bad(problem: str, r: int, recs: Sequence[HttpRecord], end: Ending | None) -> None:
            problems[problem] += 1
            if len(examples) < 8:
                examples.append(
                    {
                        "request": r,
                        "problem": problem,
                        "http": [(x.key, x.outcome, x.source) for x in recs],
                        "ending": None if end is None else (end.kind, end.error, end.chunks),
                    }
                )

        for r in view.requests:
            recs = view.http.get(r, [])
            if not recs or not recs[0].stream:
                continue
            streamed += 1
            ends = view.endings.get(r, [])
            end = ends[0] if len(ends) == 1 else None
            if end is None:
                bad("not exactly one ending", r, recs, None)
                continue
            outcomes = [effective(rec, s) for rec in recs]
            failed_before += sum(
                1
                for rec, o in zip(recs, outcomes, strict=True)
                if rec.source in BEFORE_FIRST_CHUNK and o != "ok"
            )
            problem = self._replay(s, recs, outcomes)
            if problem is not None:
                bad(problem, r, recs, end)
                continue
            last = recs[-1]
            if outcomes[-1] != "ok":
                if end.kind != "error":
                    bad(
                        f"every attempt failed before its first chunk, yet a {end.kind}",
                        r,
                        recs,
                        end,
                    )
                continue
            sent = chunks_sent(last, s)
            if sent != COMPLETE:
                continue  # broken after its first chunk: stream_break_after_first judges it
            if end.kind != "response":
                bad(f"the last answer was whole, the caller got a {end.kind}", r, recs, end)
            elif end.http_id != last.http_id:
                bad("the caller read a stream other than the last answer's", r, recs, end)
            elif end.chunks != sent:
                bad(f"the caller read {end.chunks} chunks of {sent}", r, recs, end)
            else:
                complete += 1
        total = sum(problems.values())
        return self.exact(
            view,
            total,
            events=failed_before,
            n=streamed,
            summary=(
                f"{streamed} streamed calls, {failed_before} answers failed before their first "
                f"chunk, {complete} calls read a whole stream of the answering model: "
                f"{total} deviations"
            ),
            details={"problems": dict(problems), "examples": examples},
        )

    @staticmethod
    def _replay(s: Scenario, recs: Sequence[HttpRecord], outcomes: Sequence[str]) -> str | None:
        """The policy over the effective outcomes: the first deviation, or None."""
        by_rec = {rec.http_id: o for rec, o in zip(recs, outcomes, strict=True)}
        bl = blocks(recs)
        failed: list[str] = []
        for j, (model, group) in enumerate(bl):
            if model in failed:
                return "a failed model was tried again"
            limit = s.max_attempts[model]
            for k, rec in enumerate(group, start=1):
                o = by_rec[rec.http_id]
                capped = rec.retry_after is not None and rec.retry_after > s.retry_after_cap
                retry = o in TRANSIENT_KINDS and not capped and k < limit
                if k < len(group) and not retry:
                    return "more attempts than the policy allows"
                if k == len(group) and retry:
                    return "no retry after a failure before the first chunk"
            if by_rec[group[-1].http_id] == "ok":
                return None if j == len(bl) - 1 else "attempts after the first chunk arrived"
            failed.append(model)
            remaining = [k for k in s.order if k not in failed]
            if j == len(bl) - 1 and remaining:
                return "no fallback although models were left"
        return None


@register
class StreamBreakAfterFirst(_StreamCheck):
    name = "stream_break_after_first"
    description = (
        "a stream that broke after k >= 1 chunks reached its caller as a connection error after "
        "exactly those k chunks, with a note naming the model and k, and was never replayed (exact)"
    )

    def predicted_events(self, scenario: Scenario, n: int) -> float | None:
        return n * _stream_fault_rate(scenario, frozenset({"break_after"}))

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        problems: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        breaks = 0

        def bad(problem: str, r: int, recs: Sequence[HttpRecord], end: Ending | None) -> None:
            problems[problem] += 1
            if len(examples) < 8:
                examples.append(
                    {
                        "request": r,
                        "problem": problem,
                        "http": [(x.key, x.outcome, x.source) for x in recs],
                        "ending": None if end is None else (end.kind, end.error, end.chunks),
                    }
                )

        for r in view.requests:
            recs = view.http.get(r, [])
            for i, rec in enumerate(recs):
                if not rec.stream or rec.outcome != "ok" or effective(rec, s) != "ok":
                    continue
                k = chunks_sent(rec, s)
                if k is None or k == COMPLETE:
                    continue
                breaks += 1
                ends = view.endings.get(r, [])
                end = ends[0] if len(ends) == 1 else None
                if i != len(recs) - 1:
                    bad(
                        "replayed: a further request after a break after the first chunk",
                        r,
                        recs,
                        end,
                    )
                    continue
                if end is None:
                    bad("not exactly one ending", r, recs, None)
                elif end.kind != "stream_error" or end.error not in BROKEN_ERRORS:
                    bad(f"the break reached the caller as {end.kind} {end.error}", r, recs, end)
                elif end.http_id != rec.http_id:
                    bad("the broken stream the caller read is not that answer's", r, recs, end)
                elif end.chunks != k:
                    bad(f"the caller read {end.chunks} chunks, the answer sent {k}", r, recs, end)
                elif not any(rec.key in n and f"after {k} chunk" in n for n in end.notes):
                    bad("no note naming the model and the chunks received", r, recs, end)
        total = sum(problems.values())
        return self.exact(
            view,
            total,
            events=breaks,
            n=breaks,
            summary=(
                f"{breaks} streams broke after their first chunk: {total} not an error to the "
                "caller after exactly those chunks, or replayed"
            ),
            details={"problems": dict(problems), "examples": examples},
        )
