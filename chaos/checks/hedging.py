"""Hedged requests (``hedge=notdiamond.Hedge(delay=d)``, issue 9 sections 2 and 3).

Scenarios for these checks: a priority list whose models never fail, async clients, a fixed
``delay``. Then a call sends an extra attempt exactly when its first model has not answered after
``d`` seconds, and it ends at ``min(X1, d + X2)`` (``X1``, ``X2``: the two models' latencies).
The fake provider keeps the requests a client cancelled before their answer apart
(``Trace.cancelled``), so every attempt sent is seen, answered or not.

* ``hedge_rate``: the share of calls that sent an extra attempt vs ``P(X1 > d)`` (two-sided
  binomial test; the scenario's size comes from the power analysis for a delay off by 10%).
* ``hedge_latency``: the calls' latencies vs ``1 - (1 - F1(t)) (1 - F2(t - d))``
  (one-sample Kolmogorov-Smirnov test).
* ``hedge_losers_cancelled``: no attempt of a call completes after the call answered (a loser
  still running would be answered, and counted, later) and no call has more than
  ``1 + max_extra`` attempts (exact).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from scipy import stats

from ..power import ALPHA
from ..results import CheckResult
from ..scenario import Scenario
from ..trace import HttpRecord
from . import register
from .base import Check, RunView

#: A hedge scenario's attempts of one request, answered or cancelled, in start order.
Sent = list[HttpRecord]


def sent_by_request(view: RunView) -> dict[int, Sent]:
    out: dict[int, Sent] = defaultdict(list)
    if view.trace is None:
        return out
    for rec in [*view.trace.http, *view.trace.cancelled]:
        out[rec.request].append(rec)
    for recs in out.values():
        recs.sort(key=lambda r: (r.start, r.http_id))
    return out


def p_hedge(scenario: Scenario, delay: float) -> float:
    """P(the first model has not answered after ``delay``)."""
    first = scenario.order[0]
    return 1.0 - scenario.providers[first].latency.cdf(delay)


def predicted_latency_cdf(scenario: Scenario, delay: float) -> Any:
    """The CDF of a call's latency, ``min(X1, delay + X2)``, from the scenario's distributions."""
    first, second = scenario.order[0], scenario.order[1]
    f1 = scenario.providers[first].latency
    f2 = scenario.providers[second].latency

    def cdf(t: Any) -> Any:
        return np.array(
            [
                1.0
                - (1.0 - f1.cdf(float(x))) * (1.0 - (f2.cdf(float(x) - delay) if x > delay else 0))
                for x in np.atleast_1d(t)
            ]
        )

    return cdf


class _HedgeCheck(Check):
    needs = frozenset({"http", "endings"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.hedge_delay is not None and len(scenario.order) >= 2


@register
class HedgeRate(_HedgeCheck):
    name = "hedge_rate"
    description = (
        "the share of calls that sent an extra attempt equals P(first model's latency > delay) "
        "(binomial test)"
    )

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        delay = s.hedge_delay
        assert delay is not None
        p0 = p_hedge(s, delay)
        sent = sent_by_request(view)
        n = 0
        hedged = 0
        early = 0
        for r in view.requests:
            recs = sent.get(r, [])
            if not recs:
                continue
            n += 1
            t0 = recs[0].start
            extra = [x for x in recs[1:] if x.key != recs[0].key]
            if extra:
                hedged += 1
                if extra[0].start - t0 < delay - 1e-3:
                    early += 1
        p_value = float(stats.binomtest(hedged, n, p0).pvalue) if n else 1.0
        return self.result(
            view,
            passed=n > 0 and p_value >= ALPHA,
            statistic=hedged / n if n else 0.0,
            p_value=p_value,
            n=n,
            method="binomial",
            exercised=n > 0,
            summary=(
                f"{hedged} of {n} calls sent an extra attempt ({hedged / max(n, 1):.3f}); "
                f"P(latency > {delay:g} s) = {p0:.3f}; p = {p_value:.3g}"
            ),
            details={"expected": p0, "hedged": hedged, "before_the_delay": early},
        )


@register
class HedgeLatency(_HedgeCheck):
    name = "hedge_latency"
    description = (
        "the latency of hedged calls follows min(X1, delay + X2) from the two models' latency "
        "distributions (Kolmogorov-Smirnov)"
    )

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        delay = s.hedge_delay
        assert delay is not None
        sent = sent_by_request(view)
        latencies = []
        for r in view.requests:
            recs = sent.get(r, [])
            ends = view.endings.get(r, [])
            if recs and len(ends) == 1 and ends[0].kind == "response":
                latencies.append(ends[0].at - recs[0].start)
        if not latencies:
            return self.result(
                view,
                passed=False,
                statistic=0.0,
                p_value=None,
                n=0,
                method="ks",
                exercised=False,
                summary="no call answered",
            )
        test = stats.kstest(latencies, predicted_latency_cdf(s, delay))
        p_value = float(test.pvalue)
        return self.result(
            view,
            passed=p_value >= ALPHA,
            statistic=float(test.statistic),
            p_value=p_value,
            n=len(latencies),
            method="ks",
            exercised=True,
            summary=(
                f"{len(latencies)} call latencies vs min(X1, {delay:g} + X2): "
                f"D = {float(test.statistic):.4f}, p = {p_value:.3g}"
            ),
        )


@register
class HedgeLosersCancelled(_HedgeCheck):
    name = "hedge_losers_cancelled"
    description = (
        "no attempt of a hedged call is answered after the call answered (losers cancelled) and "
        "no call has more than 1 + max_extra attempts in flight (exact)"
    )

    def run(self, view: RunView) -> CheckResult:
        s = view.scenario
        hedge = s.config.get("hedge") or {}
        max_in_flight = 1 + int(hedge.get("max_extra", 1))
        sent = sent_by_request(view)
        late = 0
        crowded = 0
        cancelled = 0
        examples: list[dict[str, Any]] = []
        for r in view.requests:
            recs = sent.get(r, [])
            ends = view.endings.get(r, [])
            if not recs or len(ends) != 1:
                continue
            at = ends[0].at
            cancelled += sum(1 for x in recs if x.source == "cancelled")
            answered_late = [x for x in recs if x.source != "cancelled" and x.end > at + 1e-9]
            if answered_late:
                late += 1
                if len(examples) < 6:
                    examples.append(
                        {"request": r, "ended": at, "late": [(x.key, x.end) for x in answered_late]}
                    )
            events = sorted([(x.start, 1) for x in recs] + [(x.end, -1) for x in recs])
            level = peak = 0
            for _, step in events:
                level += step
                peak = max(peak, level)
            if peak > max_in_flight:
                crowded += 1
        hedged = sum(1 for recs in sent.values() if len({x.key for x in recs}) > 1)
        return self.exact(
            view,
            late + crowded,
            events=hedged,
            n=hedged,
            summary=(
                f"{hedged} hedged calls, {cancelled} attempts cancelled: {late} calls with an "
                f"attempt answered after the call ended, {crowded} with more than "
                f"{max_in_flight} in flight"
            ),
            details={"late": late, "crowded": crowded, "examples": examples},
        )
