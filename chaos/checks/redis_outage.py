"""Fleet checks for a Redis that dies mid-run (``fleet.redis_down``): calls unaffected, every
process on local state within RedisState's bound, and back on shared state once Redis returns.

The bound is RedisState's documented one: a process is on local state at most ``sync_interval +
timeout`` after Redis stops answering, and learns that it is back at its next sync. On top of it
the checks allow :data:`~chaos.checks.fleet_skip_lag.SCHEDULING_SLACK` (a loaded machine).
"""

from __future__ import annotations

import itertools
import math

from scipy import stats

from ..fleet import FleetInfo
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView
from .fleet_bounds import breaker_duration, fleet_of, primary_outage
from .fleet_dead_primary import GAP_TOLERANCE
from .fleet_skip_lag import SCHEDULING_SLACK

ALPHA = 0.001


def _redis_fault(scenario: Scenario) -> bool:
    return scenario.mode == "fleet" and bool(scenario.fleet and scenario.fleet.redis_down)


def fallback_success(scenario: Scenario) -> float:
    """P(a call succeeds) while the first model is down: the models after it, in order, each
    tried ``max_attempts`` times while its failures are transient (the fault model's rates)."""
    p_fail = 1.0
    for key in scenario.order[1:]:
        t, q = scenario.providers[key].p_attempt(scenario.timeouts[key], scenario.retry_after_cap)
        attempts = scenario.max_attempts[key]
        ok = (1.0 - t - q) * sum(t**k for k in range(attempts))
        p_fail *= 1.0 - ok
    return 1.0 - p_fail


@register
class FleetSuccessRate(Check):
    name = "fleet_success_rate"
    description = (
        "while the primary is down, calls during the Redis outage (and until the resync bound) "
        "succeed as the fault model predicts for the fallbacks (binomial) and as often as the "
        "other calls of the outage (Fisher exact); alpha 0.001"
    )
    needs = frozenset({"http", "endings"})

    def applies(self, scenario: Scenario) -> bool:
        return _redis_fault(scenario)

    def run(self, view: RunView) -> CheckResult:
        _, info = fleet_of(view.trace)
        window = primary_outage(view.scenario, info.end)
        if window is None or info.redis_down is None:
            return self.exact(view, 0, events=0, n=0, summary="no Redis outage ran", details={})
        _, start, _ = window
        kill, back = info.redis_down
        until = back + info.sync_interval + info.timeout + SCHEDULING_SLACK
        during = [0, 0]  # successes, calls
        other = [0, 0]
        for r in view.requests:
            recs, ends = view.http.get(r, []), view.endings.get(r, [])
            if not recs or not ends or recs[0].start < start:
                continue
            bucket = during if kill <= recs[0].start < until else other
            bucket[0] += ends[0].kind == "response"
            bucket[1] += 1
        p = fallback_success(view.scenario)
        if during[1] == 0:
            return self.exact(
                view, 0, events=0, n=0, summary="no call during the Redis outage", details={}
            )
        binom = stats.binomtest(during[0], during[1], p).pvalue
        fisher = (
            stats.fisher_exact(
                [[during[0], during[1] - during[0]], [other[0], other[1] - other[0]]]
            ).pvalue
            if other[1]
            else 1.0
        )
        worst = min(float(binom), float(fisher))
        return self.result(
            view,
            passed=worst >= ALPHA,
            statistic=during[0] / during[1],
            p_value=worst,
            n=during[1],
            method="binomial + Fisher exact",
            summary=(
                f"calls during the Redis outage ({kill:.2f}-{until:.2f} s): {during[0]}/{during[1]} "
                f"succeeded ({during[0] / during[1]:.1%}); predicted {p:.1%} (binomial p = "
                f"{binom:.3g}); the outage's other calls {other[0]}/{other[1]} "
                f"({(other[0] / other[1]) if other[1] else math.nan:.1%}; Fisher p = {fisher:.3g})"
            ),
            details={"during": during, "other": other, "predicted": p},
        )


def _redis_allowance(info: FleetInfo, at: float) -> float:
    """How long after ``at`` a process may take to notice Redis went or came back:
    ``sync_interval + timeout``, the scheduling slack, and the machine's stalls meanwhile."""
    allowed = info.sync_interval + info.timeout + SCHEDULING_SLACK
    return allowed + info.stalled(at, at + allowed)


def _log_times(info: FleetInfo, kind: str, since: float) -> list[list[float]]:
    """Per process, the times of its ``kind`` log lines (``down``/``up``) from ``since`` on."""
    return [
        [x.at for x in info.logs if x.process == w and x.kind == kind and x.at >= since]
        for w in range(info.processes)
    ]


def _shown(lags: list[float | None]) -> str:
    return ", ".join("none" if x is None else f"{x * 1000:.0f} ms" for x in lags)


@register
class RedisLocalFallback(Check):
    name = "redis_local_fallback"
    description = (
        "after Redis is killed, every process logs one WARNING within sync_interval + timeout "
        "(+0.5 s + the machine's measured stalls), and then decides alone: each sends its own probes to the dead primary before "
        "Redis is back (exact)"
    )
    needs = frozenset({"http"})

    def applies(self, scenario: Scenario) -> bool:
        return _redis_fault(scenario)

    def run(self, view: RunView) -> CheckResult:
        trace, info = fleet_of(view.trace)
        if info.redis_down is None:
            return self.exact(view, 0, events=0, n=0, summary="no Redis outage ran", details={})
        kill, back = info.redis_down
        allowed = _redis_allowance(info, kill)
        key = view.scenario.first_key() or view.scenario.order[0]
        local_from = kill + allowed
        problems: list[str] = []
        lags: list[float | None] = []
        own_probes: list[int] = []
        for w, downs in enumerate(_log_times(info, "down", kill)):
            lag = min(downs) - kill if downs else None
            lags.append(lag)
            if lag is None or lag > allowed:
                problems.append(f"#{w} no WARNING within {allowed * 1000:.0f} ms")
            if len([x for x in downs if x < back]) != 1:
                problems.append(f"#{w} {len(downs)} WARNINGs for one outage")
            probes = sum(
                1
                for r in trace.http
                if r.key == key and info.process_of(r.request) == w and local_from <= r.start < back
            )
            own_probes.append(probes)
            if probes == 0:
                problems.append(f"#{w} sent no probe of its own while Redis was down")
        shown = _shown(lags)
        return self.exact(
            view,
            len(problems),
            events=info.processes,
            n=info.processes,
            summary=(
                f"Redis killed at {kill:.2f} s, back at {back:.2f} s; WARNING after {shown} "
                f"(allowed {allowed * 1000:.0f} ms); probes of the dead primary per process on "
                f"local state: {own_probes}" + (f"; {problems}" if problems else "")
            ),
            details={
                "lags": lags,
                "own_probes": own_probes,
                "problems": problems,
                "syncs_and_thread_alive": info.syncs,
            },
        )


@register
class RedisResync(Check):
    name = "redis_resync"
    description = (
        "after Redis returns, every process logs that it resynchronised within sync_interval + "
        "timeout (+0.5 s + the machine's measured stalls), and from one break later the dead primary's probes are a break apart "
        "again (one per break, fleet-wide) (exact)"
    )
    needs = frozenset({"http"})

    def applies(self, scenario: Scenario) -> bool:
        return _redis_fault(scenario)

    def run(self, view: RunView) -> CheckResult:
        trace, info = fleet_of(view.trace)
        if info.redis_down is None:
            return self.exact(view, 0, events=0, n=0, summary="no Redis outage ran", details={})
        _, back = info.redis_down
        allowed = _redis_allowance(info, back)
        problems: list[str] = []
        lags: list[float | None] = []
        for w, ups in enumerate(_log_times(info, "up", back)):
            lag = min(ups) - back if ups else None
            lags.append(lag)
            if lag is None or lag > allowed:
                problems.append(f"#{w} not resynchronised within {allowed * 1000:.0f} ms")
        key = view.scenario.first_key() or view.scenario.order[0]
        least = breaker_duration(view.scenario)
        shared_from = back + allowed + least
        probes = sorted(r.start for r in trace.http if r.key == key and r.start >= shared_from)
        gaps = [b - a for a, b in itertools.pairwise(probes)]
        close = [g for g in gaps if g < least - GAP_TOLERANCE]
        if close:
            problems.append(f"{len(close)} probes less than a break apart after the resync")
        if not probes:
            problems.append("no probe after the resync to judge")
        shown = _shown(lags)
        return self.exact(
            view,
            len(problems),
            events=info.processes,
            n=info.processes,
            summary=(
                f"Redis back at {back:.2f} s; resynchronised after {shown} (allowed "
                f"{allowed * 1000:.0f} ms); from {shared_from:.2f} s {len(probes)} probes, "
                f"{len(close)} less than a break ({least:g} s) apart"
                + (f"; {problems}" if problems else "")
            ),
            details={
                "lags": lags,
                "probes": probes,
                "problems": problems,
                "syncs_and_thread_alive": info.syncs,
            },
        )
