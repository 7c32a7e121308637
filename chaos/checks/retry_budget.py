"""The retry budget (issue 12 section 4): same-model retries per model stay within it."""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any, Final

from ..health import budget_of
from ..reference.budget import BudgetConfig
from ..reference.recorder import budget_disagreements
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView, blocks

#: Slack of the float comparison ``retries <= ratio * firsts + floor``.
EPS: Final = 1e-9


@register
class RetryBudgetCheck(Check):
    name = "retry_budget"
    description = (
        "per model, at every retry the provider saw (granted when the attempt before it ended), "
        "the retries granted within the window (t > now - window) are at most ratio x the first "
        "attempts within it + min_per_second x window, from the provider's records alone; and "
        "every grant or refusal of the runtime's budget equals the reference model's (exact)"
    )
    needs = frozenset({"http"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.mode in ("sync", "async") and budget_of(scenario.config) is not None

    def run(self, view: RunView) -> CheckResult:
        options = budget_of(view.scenario.config)
        window, ratio = float(options.window), float(options.ratio)
        floor = float(options.min_per_second) * window
        firsts: dict[str, list[float]] = defaultdict(list)
        retries: dict[str, list[float]] = defaultdict(list)
        for recs in view.http.values():
            for key, group in blocks(recs):
                firsts[key].append(group[0].start)
                retries[key].extend(prev.end for prev in group[:-1])
        over: list[dict[str, Any]] = []
        exceeded = 0
        per_model: dict[str, dict[str, float]] = {}
        for key in sorted(set(firsts) | set(retries)):
            f = sorted(firsts[key])
            g = sorted(retries[key])
            worst = 0.0
            for i, at in enumerate(g):
                horizon = at - window
                granted = (i + 1) - bisect.bisect_right(g, horizon)
                allowed = ratio * (bisect.bisect_right(f, at) - bisect.bisect_right(f, horizon))
                allowed += floor
                worst = max(worst, granted - allowed)
                if granted > allowed + EPS:
                    exceeded += 1
                if granted > allowed + EPS and len(over) < 10:
                    over.append({"model": key, "at": at, "retries": granted, "allowed": allowed})
            per_model[key] = {
                "first_attempts": len(f),
                "retries": len(g),
                "requests_per_call": (len(f) + len(g)) / len(f) if f else 0.0,
                "worst_excess": worst,
            }
        recorders = view.trace.health.budgets if view.trace and view.trace.health else []
        config = BudgetConfig(
            ratio=ratio, min_per_second=float(options.min_per_second), window=window
        )
        disagree: list[str] = []
        refused = 0
        for recorder in recorders:
            disagree.extend(budget_disagreements(recorder.steps, config))
            refused += sum(1 for s in recorder.steps if s.granted is False)
        problems = exceeded + len(disagree) + (0 if recorders else 1)
        return self.exact(
            view,
            problems,
            events=refused,
            n=sum(len(v) for v in retries.values()),
            summary=(
                f"{refused} retries refused by the budget; {exceeded} retries beyond ratio x "
                f"first attempts + floor in their window; {len(disagree)} decisions unlike the "
                "reference's; requests per call: "
                + ", ".join(f"{k} {v['requests_per_call']:.2f}" for k, v in per_model.items())
            ),
            details={
                "per_model": per_model,
                "over_budget": over,
                "disagreements": disagree[:10],
                "recorded": bool(recorders),
            },
        )
