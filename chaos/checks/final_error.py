"""Check 9: the error a caller receives is the last attempt's, with the earlier ones attached;
and no call whose every attempt failed returns."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView, blocks
from .conservation import SDK_ERROR
from .predict import predicted_all_fail


def _sdk_class(outcome: str) -> str | None:
    return SDK_ERROR.get(outcome)


@register
class FinalError(Check):
    name = "final_error"
    description = (
        "a call whose every model failed raises the last attempt's own error (its SDK class, "
        "from the last answer) with notdiamond_failures = every attempt (model, attempt number, "
        "class, answer) in order and a note; no such call returns (exact)"
    )
    needs = frozenset({"http", "endings"})

    def predicted_events(self, scenario: Scenario, n: int) -> float | None:
        if not scenario.stationary:
            return None
        return n * predicted_all_fail(scenario)

    def run(self, view: RunView) -> CheckResult:
        problems: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        errors = 0
        failed_calls = 0
        notes_expected = sys.version_info >= (3, 11)

        def bad(problem: str, r: int) -> None:
            problems[problem] += 1
            if len(examples) < 6:
                examples.append({"request": r, "problem": problem})

        for r in view.requests:
            recs = view.http.get(r, [])
            ends = view.endings.get(r, [])
            if not recs or len(ends) != 1:
                continue  # conservation judges these
            end = ends[0]
            last = recs[-1]
            if last.outcome != "ok":
                failed_calls += 1
                if end.kind != "error":
                    bad(f"every attempt failed, yet the call ended in a {end.kind}", r)
                    continue
            if end.kind != "error":
                continue
            errors += 1
            if end.error != _sdk_class(last.outcome) and not (
                last.outcome == "408" and end.error == "APIStatusError"
            ):
                bad(f"raised {end.error}, the last attempt failed with {last.outcome}", r)
            status_answer = last.outcome not in ("reset", "read_timeout")
            if status_answer and end.http_id != last.http_id:
                bad("the raised error is not the last attempt's answer", r)
            failures = end.failures
            if failures is None:
                bad("notdiamond_failures not attached", r)
                continue
            expected = [
                (rec.key, k) for key, group in blocks(recs) for k, rec in enumerate(group, start=1)
            ]
            if [(f.key, f.attempt) for f in failures] != expected:
                bad("notdiamond_failures: not every attempt (model, attempt) in order", r)
                continue
            for f, rec in zip(failures, recs, strict=True):
                if f.error != _sdk_class(rec.outcome) and not (
                    rec.outcome == "408" and f.error == "APIStatusError"
                ):
                    bad("notdiamond_failures: an entry of the wrong class", r)
                    break
                if rec.outcome not in ("reset", "read_timeout") and f.http_id != rec.http_id:
                    bad("notdiamond_failures: an entry from the wrong answer", r)
                    break
            if not failures[-1].is_raised or any(f.is_raised for f in failures[:-1]):
                bad("the raised error is not the last entry of notdiamond_failures", r)
            if notes_expected and len(failures) > 1 and not end.noted:
                bad("no note naming the earlier failures", r)
        total = sum(problems.values())
        return self.exact(
            view,
            total,
            events=failed_calls,
            n=failed_calls,
            summary=(
                f"{failed_calls} calls whose every attempt failed, {errors} raised errors: "
                f"{total} not the last attempt's error with every failure attached"
            ),
            details={"problems": dict(problems), "examples": examples, "errors": errors},
        )
