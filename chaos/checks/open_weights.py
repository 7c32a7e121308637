"""While a model's breaker is open, first choices follow the weights renormalised over the others."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from typing import Any

from scipy import stats

from .. import power
from ..health import breaker_of
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView
from .stats import goodness_of_fit, normalised, weight_table

#: Groups whose expected count of some model is below this are left out (chi-square validity).
MIN_EXPECTED = 5.0


class Timeline:
    """Each model's breaker state over virtual time, from the transitions the runtime reported
    (``breaker_reference`` checks each of them against the reference model)."""

    def __init__(self, transitions: list[Any]) -> None:
        self.by_key: dict[str, list[Any]] = defaultdict(list)
        for t in transitions:
            self.by_key[t.key].append(t)
        self.times = {k: [t.at for t in v] for k, v in self.by_key.items()}
        self.all_times = {t.at for t in transitions}

    def state(self, key: str, at: float) -> str:
        """``open`` (skipped for sure), ``closed``, or ``unsure`` (its break has ended: the next
        admission makes it half-open; or a probe is in flight)."""
        times = self.times.get(key, [])
        i = bisect.bisect_right(times, at) - 1
        if i < 0:
            return "closed"
        last = self.by_key[key][i]
        if last.after == "closed":
            return "closed"
        if last.after == "open" and last.until is not None and at < last.until:
            return "open"
        return "unsure"


@register
class OpenWeights(Check):
    name = "open_weights"
    description = (
        "the first model of each request that starts while some models' breakers are open "
        "follows the weights renormalised over the models not open; one chi-square per set of "
        "open models, summed (groups with an expected count below 5 left out)"
    )

    def applies(self, scenario: Scenario) -> bool:
        return (
            scenario.weights is not None
            and scenario.traffic.model == "notdiamond"
            and breaker_of(scenario.config) is not None
        )

    def run(self, view: RunView) -> CheckResult:
        assert view.weights is not None
        weights = {k: w for k, w in view.weights.items() if w > 0}
        timeline = Timeline(list(view.trace.transitions) if view.trace else [])
        groups: dict[frozenset[str], Counter[str]] = defaultdict(Counter)
        unsure = 0
        for recs in view.http.values():
            if not recs:
                continue
            at = recs[0].start
            if at in timeline.all_times:
                unsure += 1  # a transition at the same instant: order unknown from the trace
                continue
            states = {k: timeline.state(k, at) for k in weights}
            if "unsure" in states.values():
                unsure += 1
                continue
            opened = frozenset(k for k, s in states.items() if s == "open")
            if opened and len(weights) - len(opened) >= 1:
                groups[opened][recs[0].key] += 1
        chi2_total, df_total, n_total = 0.0, 0, 0
        tables: dict[str, Any] = {}
        outside = 0
        deltas: dict[str, float] = {}
        required = 0
        for opened, observed in sorted(groups.items(), key=lambda g: sorted(g[0])):
            rest = {k: w for k, w in weights.items() if k not in opened}
            expected = normalised(rest)
            label = "open: " + ", ".join(sorted(opened))
            outside += sum(c for k, c in observed.items() if k not in rest)
            observed = Counter({k: c for k, c in observed.items() if k in rest})
            n = sum(observed.values())
            if len(rest) < 2 or min(expected.values()) * n < MIN_EXPECTED:
                tables[label] = {"n": n, "left_out": True}
                continue
            chi2, _, n = goodness_of_fit(observed, expected)
            chi2_total += chi2
            df_total += len(expected) - 1
            n_total += n
            tables[label] = weight_table(observed, expected)
            deltas[label] = power.detectable_delta(list(expected.values()), n)
            required = max(required, power.chi2_sample_size(list(expected.values())))
        p = float(stats.chi2.sf(chi2_total, df_total)) if df_total else 1.0
        claim = ", ".join(f"{k}: {v * 100:.1f} points" for k, v in deltas.items())
        return self.result(
            view,
            passed=n_total > 0 and outside == 0 and p >= power.ALPHA,
            statistic=chi2_total,
            p_value=p if df_total else None,
            n=n_total,
            method="chi-square",
            required_n=required or None,
            exercised=n_total > 0,
            summary=(
                f"first model of {n_total} requests started while a breaker was open vs the "
                f"renormalised weights: chi2={chi2_total:.2f}, df={df_total}, p={p:.3g}; "
                f"{outside} drew an open model; detects (power 0.99) {claim or 'nothing'}"
            ),
            details={
                "groups": tables,
                "df": df_total,
                "alpha": power.ALPHA,
                "drew_open_model": outside,
                "unsure_requests_left_out": unsure,
                "detectable_delta": deltas,
            },
        )
