"""Check 8: what every attempt sent (model, messages, timeout) is what SPEC 4.2 promises."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from ..results import CheckResult
from ..scenario import Scenario
from ..trace import CALLER_MESSAGES
from . import register
from .base import Check, RunView


def expected_messages(scenario: Scenario, key: str) -> str:
    """The messages an attempt on ``key`` must send, as the fake provider records them."""
    messages = [*scenario.messages[key], *CALLER_MESSAGES]
    return json.dumps(messages, sort_keys=True, separators=(",", ":"))


@register
class AttemptFields(Check):
    name = "attempt_fields"
    description = (
        "every attempt (first, retry, after a fallback) sends the model's bare name, its "
        "model_messages before the caller's, and its timeout, as the provider received them "
        "(body and the request's timeout; over real sockets the timeout is not visible) (exact)"
    )

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        messages = {k: expected_messages(s, k) for k in s.order}
        timeouts = s.timeouts
        check_timeout = s.mode != "server"
        kinds: Counter[str] = Counter()
        wrong: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        for r, recs in view.http.items():
            prev = None
            for rec in recs:
                kind = "first" if prev is None else ("retry" if rec.key == prev else "fallback")
                prev = rec.key
                kinds[kind] += 1
                settings = s.settings.get(rec.key)
                problems = []
                if settings is None:
                    problems.append("model not configured")
                else:
                    if rec.body_model != settings.model:
                        problems.append("model")
                    if rec.messages != messages[rec.key]:
                        problems.append("messages")
                    if check_timeout and (
                        rec.timeout is None or not math.isclose(rec.timeout, timeouts[rec.key])
                    ):
                        problems.append("timeout")
                for p in problems:
                    wrong[f"{p} on a {kind} attempt"] += 1
                if problems and len(examples) < 6:
                    examples.append(
                        {
                            "request": r,
                            "attempt": kind,
                            "model": rec.key,
                            "wrong": problems,
                            "sent": {
                                "model": rec.body_model,
                                "messages": rec.messages[:200],
                                "timeout": rec.timeout,
                            },
                            "expected": {
                                "model": settings.model if settings else None,
                                "messages": messages.get(rec.key, "")[:200],
                                "timeout": timeouts.get(rec.key),
                            },
                        }
                    )
        total = sum(wrong.values())
        attempts = sum(kinds.values())
        fields = "model, messages" + (", timeout" if check_timeout else "")
        return self.exact(
            view,
            total,
            events=attempts,
            n=attempts,
            summary=(
                f"{attempts} attempts ({kinds['first']} first, {kinds['retry']} retries, "
                f"{kinds['fallback']} after a fallback): {total} with a wrong {fields}"
            ),
            details={"attempts": dict(kinds), "wrong": dict(wrong), "examples": examples},
        )
