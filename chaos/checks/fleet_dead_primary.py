"""Fleet check (a): the requests a dead primary receives across every process stay within what one
shared breaker allows (``fleet_bounds``), far below what N separate breakers would allow."""

from __future__ import annotations

import itertools

from ..results import CheckResult
from . import register
from .base import Check, RunView
from .fleet_bounds import breaker_duration, dead_primary_bound, fleet_of, primary_outage
from .fleet_skip_lag import skip_tolerance

#: Two probes of one shared breaker are a break apart, to this much (the break's remaining time
#: is mapped from Redis's TTL onto each process's clock after a round trip: milliseconds).
GAP_TOLERANCE = 0.02


@register
class FleetDeadPrimary(Check):
    name = "fleet_dead_primary"
    description = (
        "across every process, the requests the dead primary receives during its outage are at "
        "most one shared breaker's opening calls (k + (N-1) min(k, ceil((s+t)/I)+1)) plus one "
        "probe per break (once every process has learned of the opening, requests to the primary "
        "are at least break_duration apart); N separate breakers' bound shown beside it (exact)"
    )
    needs = frozenset({"http"})

    def applies(self, scenario: object) -> bool:
        return getattr(scenario, "mode", None) == "fleet"

    def run(self, view: RunView) -> CheckResult:
        trace, info = fleet_of(view.trace)
        window = primary_outage(view.scenario, info.end)
        if window is None:
            return self.exact(
                view, 0, events=0, n=0, summary="no outage of the primary in the run", details={}
            )
        key, start, end = window
        bound = dead_primary_bound(
            view.scenario,
            info.processes,
            end - start,
            sync_interval=info.sync_interval,
            timeout=info.timeout,
        )
        received = sorted(
            (r for r in trace.http if r.key == key and start <= r.start < end),
            key=lambda r: r.start,
        )
        per_process = [0] * info.processes
        for r in received:
            per_process[info.process_of(r.request)] += 1
        over = max(0, len(received) - bound.shared)
        # after this, every process has learned of the first opening (fleet_skip_lag's bound):
        # every request to the primary is a probe
        opens = [t.at for t in info.transitions if t.key == key and t.after == "open"]
        learned = end
        if opens:
            first = min(opens)
            learned = (
                first
                + info.sync_interval
                + skip_tolerance(view.scenario.traffic.interval, info.timeout)
            )
            learned += info.stalled(first, learned)  # as fleet_skip_lag allows
        probes = [r.start for r in received if r.start >= learned]
        gaps = [b - a for a, b in itertools.pairwise(probes)]
        least = breaker_duration(view.scenario)
        close = [g for g in gaps if g < least - GAP_TOLERANCE]
        shortest = f"{min(gaps) * 1000:.0f} ms" if gaps else "none"
        return self.exact(
            view,
            over + len(close),
            events=len(received),
            n=len(received),
            summary=(
                f"{info.processes} processes: the dead primary received {len(received)} requests "
                f"in {start:g}-{end:.2f} s (per process {per_process}); one shared breaker allows "
                f"{bound.shared} ({bound.opening} opening + {bound.probes} probes); "
                f"{info.processes} separate breakers would allow {bound.separate}; "
                f"{len(probes)} probes after every process learned of the opening, "
                f"{len(close)} less than a break ({least:g} s) after the one before "
                f"(shortest gap {shortest})"
            ),
            details={
                "received": len(received),
                "per_process": per_process,
                "shared_bound": bound.shared,
                "opening_bound": bound.opening,
                "probe_bound": bound.probes,
                "separate_bound": bound.separate,
                "outage": [start, end],
                "probes": probes,
                "gaps_below_break": len(close),
            },
        )
