"""Fleet check (b): once the shared breaker opens, every process skips the primary within
``sync_interval`` plus a stated tolerance."""

from __future__ import annotations

from ..results import CheckResult
from . import register
from .base import Check, RunView
from .fleet_bounds import fleet_of

#: Scheduling slack on a loaded 2-core machine: a process's sync thread or its next call can wait
#: this long for a core (up to 714 ms late was seen with 0.1 s of slack at load average 6.7 on 2
#: cores, the test suite's reduced run beside other work).
SCHEDULING_SLACK = 0.5


def skip_tolerance(interval: float, timeout: float) -> float:
    """Beyond ``sync_interval``: a call must arrive to show the skip (one ``interval``), the sync's
    round trip (at most ``timeout``, else it is an outage of Redis) and scheduling slack."""
    return interval + timeout + SCHEDULING_SLACK


@register
class FleetSkipLag(Check):
    name = "fleet_skip_lag"
    description = (
        "every process's first call that skips the primary starts within sync_interval + "
        "(interval + timeout + 0.5 s + the machine's measured stalls) of the fleet's first "
        "opening of its breaker (exact)"
    )
    needs = frozenset({"http"})

    def applies(self, scenario: object) -> bool:
        return getattr(scenario, "mode", None) == "fleet"

    def run(self, view: RunView) -> CheckResult:
        _, info = fleet_of(view.trace)
        primary = view.scenario.first_key() or view.scenario.order[0]
        opens = [t.at for t in info.transitions if t.key == primary and t.after == "open"]
        if not opens:
            return self.exact(
                view, 0, events=0, n=0, summary="the primary's breaker never opened", details={}
            )
        opened = min(opens)
        allowed = info.sync_interval + skip_tolerance(view.scenario.traffic.interval, info.timeout)
        stalled = info.stalled(opened, opened + allowed)
        allowed += stalled
        lags: list[float | None] = [None] * info.processes
        for request, recs in sorted(view.http.items()):
            w = info.process_of(request)
            if request < 0 or lags[w] is not None or not recs or recs[0].start < opened:
                continue
            if recs[0].key != primary:
                lags[w] = recs[0].start - opened
        late = [w for w, lag in enumerate(lags) if lag is None or lag > allowed]
        shown = ", ".join("never" if x is None else f"{x * 1000:.0f} ms" for x in lags)
        return self.exact(
            view,
            len(late),
            events=info.processes,
            n=info.processes,
            summary=(
                f"first opening at {opened:.3f} s; each process's first skip after it: {shown} "
                f"(allowed {allowed * 1000:.0f} ms = sync_interval {info.sync_interval:g} s + "
                f"tolerance + {stalled * 1000:.0f} ms the machine stalled); {len(late)} late"
            ),
            details={"opened": opened, "lags": lags, "allowed": allowed, "late": late},
        )
