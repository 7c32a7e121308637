"""The whole-call deadline (issue 12 section 3): no call outlives it, in virtual time, exactly."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from ..health import deadline_of
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView

#: Float slack of virtual-time sums (start + deadline computed in two places).
EPS: Final = 1e-6


def call_starts(view: RunView) -> dict[int, float]:
    """When each request's call began, from the driver's schedule (not from the runtime): sync
    requests run one after the other, at their arrival time or when the previous one ended;
    async requests start at their arrival time."""
    interval = view.scenario.traffic.interval
    if view.scenario.mode == "async":
        return {r: r * interval for r in view.requests}
    starts: dict[int, float] = {}
    free = 0.0
    for r in view.requests:
        starts[r] = max(r * interval, free)
        ends = view.endings.get(r, [])
        free = max([starts[r], *(e.at for e in ends)])
    return starts


@register
class Deadline(Check):
    name = "deadline"
    description = (
        "no call outlives its deadline in virtual time: it ends by start + deadline, sends no "
        "attempt at or after it, each attempt's timeout is min(model timeout, time left), and a "
        "call whose last attempt timed out after being cut short raises DeadlineExceeded (exact)"
    )
    needs = frozenset({"http", "endings"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.mode in ("sync", "async") and deadline_of(scenario.config) is not None

    def run(self, view: RunView) -> CheckResult:
        limit = deadline_of(view.scenario.config)
        assert limit is not None
        timeouts = view.scenario.timeouts
        starts = call_starts(view)
        problems: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        cut = 0
        at_deadline = 0
        longest = 0.0

        def bad(problem: str, r: int, **extra: Any) -> None:
            problems[problem] += 1
            if len(examples) < 6:
                examples.append({"request": r, "problem": problem, **extra})

        for r in view.requests:
            start = starts[r]
            end_by = start + limit
            recs = view.http.get(r, [])
            ends = view.endings.get(r, [])
            clamped_any = False
            for rec in recs:
                # The runtime reads the call's start on its own clock; an attempt within EPS of
                # the deadline is "at" it only up to float rounding, so only a later one fails.
                if rec.start >= end_by + EPS:
                    bad("an attempt sent after the deadline", r, start=rec.start)
                elif rec.start >= end_by - EPS:
                    at_deadline += 1
                left = end_by - rec.start
                expected = min(timeouts[rec.key], left)
                clamped = left < timeouts[rec.key]
                clamped_any = clamped_any or clamped
                if rec.timeout is not None and abs(rec.timeout - expected) > EPS:
                    bad(
                        "attempt timeout is not min(model timeout, time left)",
                        r,
                        timeout=rec.timeout,
                        expected=expected,
                    )
                if rec.end > end_by + EPS:
                    bad("an attempt ended after the deadline", r, end=rec.end, deadline=end_by)
            if clamped_any:
                cut += 1
            for end in ends:
                longest = max(longest, end.at - start)
                if end.at > end_by + EPS:
                    bad("the call outlived its deadline", r, took=end.at - start)
            if len(ends) == 1 and ends[0].kind == "error" and recs:
                last = recs[-1]
                last_clamped = timeouts[last.key] > end_by - last.start
                if last.outcome == "read_timeout" and last_clamped:
                    if ends[0].error != "DeadlineExceeded":
                        bad("cut short by the deadline, raised " + str(ends[0].error), r)
                elif ends[0].error == "DeadlineExceeded":
                    bad("DeadlineExceeded although no attempt was cut short by the deadline", r)
        total = sum(problems.values())
        return self.exact(
            view,
            total,
            events=cut,
            n=len(view.requests),
            summary=(
                f"deadline {limit:g} s: {cut} calls had an attempt cut to the time left, the "
                f"longest call took {longest:.3f} s; {total} deviations"
            ),
            details={
                "problems": dict(problems),
                "examples": examples,
                "deadline": limit,
                "sent_at_the_deadline_up_to_rounding": at_deadline,
            },
        )
