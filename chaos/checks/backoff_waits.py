"""Check 5: every wait between two attempts of one model, and none before a fallback."""

from __future__ import annotations

from typing import Any

from scipy import stats

from .. import power
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView
from .predict import predicted_retries


@register
class BackoffWaits(Check):
    name = "backoff_waits"
    description = (
        "every gap between two attempts of one model is max(backoff ** k, Retry-After) to the "
        "millisecond (with jitter: inside its bounds, and the recovered draws uniform by KS); a "
        "fallback starts at once"
    )

    def predicted_events(self, scenario: Scenario, n: int) -> float | None:
        return n * predicted_retries(scenario) if scenario.stationary else None

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        pairs = view.wait_pairs()
        below, above = view.tolerance
        jitter = s.jitter
        bad = [(e, o) for e, o, _, _, lo, hi in pairs if o < lo - below or o > hi + above]
        worst = max((max(lo - o, o - hi, 0.0) for _, o, _, _, lo, hi in pairs), default=0.0)
        retry_after = sum(1 for p in pairs if p[2])
        retries = sum(1 for p in pairs if p[3] == "retry")
        rel = [o / e - 1 for e, o, _, k, _, _ in pairs if k == "retry" and e > 0]
        longest = max((o for _, o, _, k, _, _ in pairs if k == "retry"), default=0.0)
        details: dict[str, Any] = {
            "outside_tolerance": len(bad),
            "examples": [{"expected": e, "observed": o} for e, o in bad[:8]],
            "retry_after_governed": retry_after,
            "tolerance_s": [below, above],
            "mean_relative_deviation": (sum(rel) / len(rel)) if rel else None,
            "longest_wait_s": longest,
        }
        statistic, p_value, method = worst, None, "exact"
        ks_note = ""
        passed = not bad and retries > 0
        if jitter > 0:
            # the jitter's draws, recovered from the waits Retry-After did not set: U[0, 1)
            u = [
                (1 - o / e) / jitter
                for e, o, governed, k, _, _ in pairs
                if k == "retry" and not governed and e > 0
            ]
            if len(u) >= 2:
                ks = stats.kstest(u, "uniform")
                statistic, p_value, method = float(ks.statistic), float(ks.pvalue), "KS + bounds"
                passed = passed and p_value >= power.ALPHA
                ks_note = f"; KS of the jitter draws vs U[0,1): D={statistic:.4f}, p={p_value:.3g}, n={len(u)}"
                details["ks_n"] = len(u)
            details["jitter"] = f"backoff ** k * (1 - {jitter:g} * u), u ~ U[0, 1)"
        else:
            details["jitter"] = "none configured: every wait is compared exactly"
        bounds = "inside the jitter bounds" if jitter > 0 else "exact"
        exercised, predicted = self.exercised(view, retries)
        if retries == 0 and exercised:
            passed = not bad
        return self.result(
            view,
            passed=passed,
            statistic=statistic,
            p_value=p_value,
            n=len(pairs),
            method=method,
            exercised=exercised,
            predicted_events=predicted,
            summary=(
                f"{retries} waits before a retry ({retry_after} set by Retry-After, longest "
                f"{longest:.3g} s) and {len(pairs) - retries} fallbacks, {bounds}; largest "
                f"deviation {worst * 1000:.3f} ms; {len(bad)} outside "
                f"[-{below * 1000:g}, +{above * 1000:g}] ms" + ks_note
            ),
            details=details,
        )
