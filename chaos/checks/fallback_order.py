"""Check 3: a priority list falls back exactly in list order, failed models removed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView, blocks
from .predict import predicted_fallbacks


def expected_next(order: Sequence[str], failed: Sequence[str]) -> str | None:
    for key in order:
        if key not in failed:
            return key
    return None


@register
class FallbackOrder(Check):
    name = "fallback_order"
    description = (
        "priority lists fall back in list order with failed models removed: every request's "
        "sequence of models is a prefix of that order (exact)"
    )

    def applies(self, scenario: Scenario) -> bool:
        return scenario.weights is None

    def predicted_events(self, scenario: Scenario, n: int) -> float | None:
        return n * predicted_fallbacks(scenario) if scenario.stationary else None

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        first = s.first_key()
        assert first is not None
        violations = 0
        with_fallback = 0
        examples: list[dict[str, Any]] = []
        for r, recs in view.http.items():
            models = [m for m, _ in blocks(recs)]
            expected = [first]
            while len(expected) < len(models):
                nxt = expected_next(s.order, expected)
                if nxt is None:
                    break
                expected.append(nxt)
            if len(models) > 1:
                with_fallback += 1
            if models != expected[: len(models)] or len(set(models)) != len(models):
                violations += 1
                if len(examples) < 5:
                    examples.append({"request": r, "models": models, "expected": expected})
        return self.exact(
            view,
            violations,
            events=with_fallback,
            n=with_fallback,
            summary=(
                f"{with_fallback} requests fell back; {violations} left list order "
                f"{list(s.order)} (failed models removed)"
            ),
            details={"violations": violations, "examples": examples, "requests": len(view.http)},
        )
