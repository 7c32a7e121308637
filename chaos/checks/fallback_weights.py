"""Check 2: after a model fails, the next one is drawn from the remaining weights renormalised."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from scipy import stats

from .. import power
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView, blocks
from .predict import predicted_fallbacks
from .stats import goodness_of_fit, normalised, weight_table


def fallback_draws(view: RunView) -> dict[frozenset[str], Counter[str]]:
    """Every fallback of every request, grouped by the set of models failed before it."""
    groups: dict[frozenset[str], Counter[str]] = defaultdict(Counter)
    for recs in view.http.values():
        bl = blocks(recs)
        for j in range(1, len(bl)):
            failed = frozenset(m for m, _ in bl[:j])
            groups[failed][bl[j][0]] += 1
    return groups


@register
class FallbackWeights(Check):
    name = "fallback_weights"
    description = (
        "after a model fails, the next is drawn from the remaining weights renormalised: one "
        "chi-square per set of failed models (summed), a draw of a weight-0 or failed model fails"
    )

    def applies(self, scenario: Scenario) -> bool:
        return scenario.weights is not None

    def predicted_events(self, scenario: Scenario, n: int) -> float | None:
        return n * predicted_fallbacks(scenario) if scenario.stationary else None

    def run(self, view: RunView) -> CheckResult:
        weights = view.weights
        assert weights is not None
        groups = fallback_draws(view)
        total_stat, total_df, n = 0.0, 0, 0
        per_group: list[dict[str, Any]] = []
        stray = 0
        for failed, counts in sorted(groups.items(), key=lambda kv: -sum(kv[1].values())):
            remaining = normalised({k: w for k, w in weights.items() if k not in failed})
            m = sum(counts.values())
            stray += sum(v for k, v in counts.items() if k not in remaining)
            if len(remaining) < 2 or min(remaining.values()) * m < 5:
                per_group.append({"failed": sorted(failed), "n": m, "used": False})
                continue
            chi2, p, _ = goodness_of_fit(counts, remaining)
            total_stat += chi2
            total_df += len(remaining) - 1
            n += m
            per_group.append(
                {
                    "failed": sorted(failed),
                    "n": m,
                    "used": True,
                    "chi2": chi2,
                    "p_value": p,
                    "table": weight_table(counts, remaining),
                }
            )
        if stray:
            p_all, total_stat = 0.0, math.inf
        elif total_df:
            p_all = float(stats.chi2.sf(total_stat, total_df))
        else:
            p_all = math.nan
        main = next((g for g in per_group if g.get("used")), None)
        required = detectable = None
        if main is not None:
            rem = normalised({k: w for k, w in weights.items() if k not in main["failed"]})
            required = power.chi2_sample_size(list(rem.values()))
            detectable = power.detectable_delta(list(rem.values()), main["n"])
        exercised = n > 0 or stray > 0
        predicted = self.predicted_events(view.scenario, len(view.requests))
        return self.result(
            view,
            passed=exercised and stray == 0 and p_all >= power.ALPHA,
            statistic=total_stat if exercised else None,
            p_value=p_all if exercised else None,
            n=n,
            method="chi-square",
            required_n=required,
            exercised=exercised,
            predicted_events=predicted,
            summary=(
                f"{n} fallback draws in {sum(1 for g in per_group if g.get('used'))} group(s) vs the "
                f"remaining weights renormalised: chi2={total_stat:.2f} (df {total_df}), p={p_all:.3g}"
                + (f"; {stray} draws of models that could not be drawn" if stray else "")
            ),
            details={
                "groups": per_group,
                "df": total_df,
                "stray_draws": stray,
                "detectable_delta": detectable,
                "detectable_n": main["n"] if main is not None else None,
            },
        )
