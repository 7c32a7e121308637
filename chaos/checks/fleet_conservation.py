"""Fleet check (c): the ``conservation`` check in every process of a fleet, on its own trace."""

from __future__ import annotations

from ..results import CheckResult
from ..trace import Trace
from . import register
from .base import Check, RunView
from .conservation import Conservation
from .fleet_bounds import fleet_of


def process_view(view: RunView, process: int) -> RunView:
    """One process's part of a fleet run, its requests numbered from 0 again."""
    trace, info = fleet_of(view.trace)
    n = info.per_process
    low = process * n

    def mine(request: int) -> bool:
        return low <= request < low + n

    part = Trace(
        http=[r._replace(request=r.request - low) for r in trace.http if mine(r.request)],
        attempts=[a._replace(request=a.request - low) for a in trace.attempts if mine(a.request)],
        endings=[e._replace(request=e.request - low) for e in trace.endings if mine(e.request)],
        issued=n,
    )
    return RunView(view.scenario, view.seed, part)


@register
class FleetConservation(Check):
    name = "fleet_conservation"
    description = "conservation (check 7) in every process of the fleet, each on its own trace"
    needs = frozenset({"http", "attempts", "endings"})

    def applies(self, scenario: object) -> bool:
        return getattr(scenario, "mode", None) == "fleet"

    def run(self, view: RunView) -> CheckResult:
        _, info = fleet_of(view.trace)
        results = [Conservation().run(process_view(view, w)) for w in range(info.processes)]
        bad = [w for w, r in enumerate(results) if not r.passed]
        deviations = sum(int(r.statistic or 0) for r in results)
        return self.exact(
            view,
            deviations + (len(bad) if deviations == 0 else 0),
            events=len(view.requests),
            n=len(view.requests),
            summary=f"{len(results)} processes, {len(bad)} failing: "
            + "; ".join(f"#{w}: {r.summary}" for w, r in enumerate(results)),
            details={"processes": [r.details for r in results], "failing": bad},
        )
