"""Check 7: every request ends exactly once, and how it ends agrees with the trace."""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from ..results import CheckResult
from . import register
from .base import Check, RunView

#: The error class the SDK raises for each injected fault.
SDK_ERROR: Final = {
    "400": "BadRequestError",
    "401": "AuthenticationError",
    "403": "PermissionDeniedError",
    "404": "NotFoundError",
    "408": "APIStatusError",
    "409": "ConflictError",
    "422": "UnprocessableEntityError",
    "429": "RateLimitError",
    "500": "InternalServerError",
    "502": "InternalServerError",
    "503": "InternalServerError",
    "reset": "APIConnectionError",
    "read_timeout": "APITimeoutError",
}


@register
class Conservation(Check):
    name = "conservation"
    description = (
        "every request ends in exactly one response or one raised error (or a stream broken "
        "after it began); a response follows a complete success and is not None, an error "
        "follows a failed last attempt and is of its SDK class; one final decision per call (exact)"
    )
    needs = frozenset({"http", "attempts", "endings"})

    def run(self, view: RunView) -> CheckResult:
        problems: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        counts: Counter[str] = Counter()
        for r in view.requests:
            ends = view.endings.get(r, [])
            recs = view.http.get(r, [])
            atts = view.attempts.get(r, [])
            problem = None
            if len(ends) != 1:
                problem = f"{len(ends)} endings"
            else:
                end = ends[0]
                counts[end.kind] += 1
                last = recs[-1] if recs else None
                terminal = [a for a in atts if a.decision in ("success", "raise")]
                if len(terminal) != 1 or (atts and atts[-1] is not terminal[0]):
                    problem = "runtime reported no single final decision"
                elif len({a.call_id for a in atts}) != 1:
                    problem = "attempts of one request under several calls"
                elif end.kind == "response":
                    if last is None or last.outcome != "ok" or last.source == "cut":
                        problem = "response without a complete answer"
                    elif end.returned == "NoneType":
                        problem = "the call returned None"
                    elif terminal[0].decision != "success":
                        problem = "response but the runtime decided to raise"
                elif end.kind == "stream_error":
                    if last is None or last.source != "cut":
                        problem = "stream broke without a cut"
                elif end.kind == "error":
                    if last is None or last.outcome == "ok":
                        problem = "error although the last answer was a success"
                    elif terminal[0].decision != "raise":
                        problem = "error but the runtime reported success"
                    elif end.error != SDK_ERROR.get(last.outcome) and not (
                        last.outcome == "408" and end.error == "APIStatusError"
                    ):
                        problem = f"raised {end.error}, expected {SDK_ERROR.get(last.outcome)}"
            if problem:
                problems[problem] += 1
                if len(examples) < 5:
                    examples.append({"request": r, "problem": problem})
        total = sum(problems.values())
        n = len(view.requests)
        return self.exact(
            view,
            total,
            events=n,
            n=n,
            summary=(
                f"{n} requests: {counts.get('response', 0)} responses, "
                f"{counts.get('error', 0)} raised errors, {counts.get('stream_error', 0)} streams "
                f"broken mid-answer; {total} without exactly one ending"
            ),
            details={"endings": dict(counts), "problems": dict(problems), "examples": examples},
        )
