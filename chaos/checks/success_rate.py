"""Check 6: the share of requests that got a complete answer vs the fault rates' prediction."""

from __future__ import annotations

import math

from scipy import stats

from .. import power
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView
from .predict import predicted_success


@register
class SuccessRate(Check):
    name = "success_rate"
    description = (
        "the share of requests with a complete answer vs the prediction from the fault rates "
        "and the policy over every selection order: two-sided exact binomial test (stationary "
        "scenarios)"
    )
    needs = frozenset({"endings"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.stationary

    def run(self, view: RunView) -> CheckResult:
        predicted = predicted_success(view.scenario)
        n = len(view.requests)
        ok = sum(
            1 for r in view.requests if any(e.kind == "response" for e in view.endings.get(r, []))
        )
        if predicted >= 1.0:
            p = 1.0 if ok == n else 0.0
            lo, hi = (ok / n if n else 1.0), 1.0
        elif predicted <= 0.0:
            p = 1.0 if ok == 0 else 0.0
            lo, hi = 0.0, 0.0
        else:
            test = stats.binomtest(ok, n, predicted)
            p = float(test.pvalue)
            ci = test.proportion_ci(confidence_level=1 - power.ALPHA)
            lo, hi = float(ci.low), float(ci.high)
        return self.result(
            view,
            passed=n > 0 and p >= power.ALPHA,
            statistic=ok / n if n else math.nan,
            p_value=p,
            n=n,
            method="binomial",
            required_n=power.binomial_sample_size(predicted),
            summary=(
                f"{ok}/{n} requests succeeded ({ok / max(n, 1):.4f}); predicted {predicted:.4f} "
                f"from the fault rates; binomial p={p:.3g}"
            ),
            details={"successes": ok, "predicted": predicted, "ci_99_9": [lo, hi]},
        )
