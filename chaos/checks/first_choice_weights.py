"""Check 1: the first model of each ``model="notdiamond"`` request follows the weights."""

from __future__ import annotations

from collections import Counter

from .. import power
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView
from .stats import goodness_of_fit, normalised, weight_table


@register
class FirstChoiceWeights(Check):
    name = "first_choice_weights"
    description = (
        'the first model of each `model="notdiamond"` request vs the weights: chi-square '
        "goodness of fit, df = models - 1"
    )

    def applies(self, scenario: Scenario) -> bool:
        return scenario.weights is not None and scenario.traffic.model == "notdiamond"

    def run(self, view: RunView) -> CheckResult:
        assert view.weights is not None
        observed: Counter[str] = Counter(recs[0].key for recs in view.http.values() if recs)
        expected = normalised(view.weights)
        chi2, p, n = goodness_of_fit(observed, expected)
        required = power.chi2_sample_size(list(expected.values()))
        return self.result(
            view,
            passed=n > 0 and p >= power.ALPHA,
            statistic=chi2,
            p_value=p,
            n=n,
            method="chi-square",
            required_n=required,
            exercised=n > 0,
            summary=f"first model of {n} requests vs weights: chi2={chi2:.2f}, p={p:.3g}",
            details={
                "table": weight_table(observed, expected),
                "df": len(expected) - 1,
                "alpha": power.ALPHA,
                "detectable_delta": power.detectable_delta(list(expected.values()), n)
                if n
                else None,
            },
        )
