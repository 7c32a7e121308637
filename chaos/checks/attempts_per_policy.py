"""Check 4: the attempts of every request, replayed against the retry policy."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from ..results import CheckResult
from ..trace import HttpRecord
from . import register
from .base import Check, RunView, blocks, is_retryable


@register
class AttemptsPerPolicy(Check):
    name = "attempts_per_policy"
    description = (
        "replays the policy over each request's answers (transient: retry up to max_retries; "
        "permanent or Retry-After beyond the cap: leave; success: stop; fall back while models "
        "are left, never to a failed one); HTTP requests = attempts reported (exact)"
    )
    needs = frozenset({"http", "attempts"})

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        cap = s.retry_after_cap
        max_attempts = s.max_attempts
        positive = [k for k in s.order if view.weights is None or view.weights[k] > 0]
        violations: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        block_lengths: dict[str, Counter[int]] = defaultdict(Counter)
        http_total = 0
        attempts_total = len(view.trace.attempts) if view.trace else 0

        def bad(kind: str, r: int, recs: Sequence[HttpRecord]) -> None:
            violations[kind] += 1
            if len(examples) < 8:
                examples.append(
                    {
                        "request": r,
                        "problem": kind,
                        "http": [(x.key, x.outcome, x.retry_after) for x in recs],
                    }
                )

        for r in view.requests:
            recs = view.http.get(r, [])
            http_total += len(recs)
            reported = len(view.attempts.get(r, []))
            if reported != len(recs):
                bad("http requests != attempts reported by the runtime", r, recs)
            if not recs:
                continue
            bl = blocks(recs)
            failed: list[str] = []
            for j, (model, group) in enumerate(bl):
                block_lengths[model][len(group)] += 1
                if model in failed:
                    bad("a failed model was tried again", r, recs)
                limit = max_attempts[model]
                problem = None
                for k, rec in enumerate(group, start=1):
                    retry = rec.outcome != "ok" and is_retryable(rec, cap) and k < limit
                    if k < len(group) and not retry:
                        problem = "more attempts than the policy allows"
                        break
                    if k == len(group) and retry:
                        problem = "fewer attempts than the policy allows"
                if problem is not None:
                    bad(problem, r, recs)
                    break
                last = group[-1]
                if last.outcome == "ok":
                    if j != len(bl) - 1:
                        bad("calls after a success", r, recs)
                    break
                failed.append(model)
                remaining = [k for k in positive if k not in failed]
                if j == len(bl) - 1 and remaining:
                    bad("no fallback although models were left", r, recs)
                if j < len(bl) - 1 and not remaining:
                    bad("calls after every model failed", r, recs)
        total = sum(violations.values())
        n = len(view.requests)
        return self.exact(
            view,
            total,
            events=n,
            n=n,
            summary=(
                f"{http_total} HTTP requests, {attempts_total} attempts reported, over "
                f"{n} requests; {total} deviations from max_retries={dict(max_attempts)}"
            ),
            details={
                "violations": dict(violations),
                "examples": examples,
                "http_requests": http_total,
                "attempts_reported": attempts_total,
                "block_lengths": {m: dict(sorted(c.items())) for m, c in block_lengths.items()},
            },
        )
