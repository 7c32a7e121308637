"""What one shared breaker allows a fleet to send to a dead model, and what N separate ones allow.

Not a check: the arithmetic behind ``fleet_dead_primary`` (and the fleet benchmark), derived from
the scenario's configuration alone (``chaos/README.md``, "Fleet scenarios", states it).

During an outage of the primary from ``S`` to ``E`` (cut at the run's end), with ``N`` processes,
``k = consecutive_failures`` (the ratio rule can only open sooner), breaks ``b_0 = break_duration``
doubling up to ``max_break_duration``, every process sending one call at a time every ``I``
seconds, and ``RedisState(sync_interval=s, timeout=t)``:

- **opening calls**: the breaker opens at its ``k``-th failure in a row. The process that opens it
  publishes at once; every other process learns it at its next sync, at most ``s + t`` later, and
  until then sends at most ``ceil((s + t) / I) + 1`` calls (one in flight), and never more than
  ``k`` (its own run of ``k`` opens it locally). Opening calls <= ``k + (N - 1) * min(k,
  ceil((s + t) / I) + 1)``.
- **probes**: one per break, fleet-wide (the probe lease). The ``j``-th probe cannot come before
  ``S + b_0 + ... + b_(j-1)``, so at most ``P = max{j : b_0 + ... + b_(j-1) <= E - S}`` probes
  reach the outage.
- **one probe per break, seen by the provider**: once every process has learned of the opening
  (``fleet_skip_lag``'s bound after it), every request to the primary is a probe, and two probes
  are at least ``break_duration`` apart (20 ms of tolerance). This rule holds however slowly a
  loaded machine lets the processes send, where the count above only bounds them.
- **N separate breakers** each open on their own ``k`` failures and probe each of their own
  breaks: ``N * (k + P)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..fleet import FleetInfo, FleetTrace
from ..health import breaker_of
from ..scenario import Scenario


@dataclass(frozen=True)
class DeadPrimaryBound:
    processes: int
    k: int
    per_other: int
    probes: int

    @property
    def opening(self) -> int:
        return self.k + (self.processes - 1) * self.per_other

    @property
    def shared(self) -> int:
        """The most requests one shared breaker lets the fleet send during the outage."""
        return self.opening + self.probes

    @property
    def separate(self) -> int:
        """What ``processes`` separate (per-process) breakers allow."""
        return self.processes * (self.k + self.probes)


def probes_within(duration: float, break_duration: float, max_break: float) -> int:
    """Breaks that can end within ``duration`` seconds of the first opening (one probe each)."""
    count, elapsed, current = 0, 0.0, break_duration
    while elapsed + current <= duration:
        elapsed += current
        count += 1
        current = min(current * 2.0, max_break)
    return count


def dead_primary_bound(
    scenario: Scenario, processes: int, duration: float, *, sync_interval: float, timeout: float
) -> DeadPrimaryBound:
    breaker = breaker_of(scenario.config)
    if breaker is None:
        raise ValueError(f"{scenario.name}: the fleet bound needs a circuit breaker")
    k = int(breaker.consecutive_failures)
    interval = scenario.traffic.interval
    lag_calls = math.ceil((sync_interval + timeout) / interval) + 1 if interval > 0 else k
    return DeadPrimaryBound(
        processes,
        k,
        min(k, lag_calls),
        probes_within(duration, float(breaker.break_duration), float(breaker.max_break_duration)),
    )


def breaker_duration(scenario: Scenario) -> float:
    """The shortest break of the scenario's breaker (its ``break_duration``)."""
    breaker = breaker_of(scenario.config)
    if breaker is None:
        raise ValueError(f"{scenario.name}: a fleet scenario needs a circuit breaker")
    return float(breaker.break_duration)


def primary_outage(scenario: Scenario, end: float) -> tuple[str, float, float] | None:
    """The first model and its first outage window, cut at ``end`` (None: no outage in the run)."""
    key = scenario.first_key() or scenario.order[0]
    for outage in scenario.providers[key].outages:
        stop = min(outage.end, end)
        if outage.start < stop:
            return key, outage.start, stop
    return None


def fleet_of(trace: object) -> tuple[FleetTrace, FleetInfo]:
    """A fleet run's joined trace and its facts (a fleet check on another run is a harness bug)."""
    if not isinstance(trace, FleetTrace) or trace.fleet is None:
        raise TypeError("a fleet check needs the trace of a fleet run (chaos/fleet.py)")
    return trace, trace.fleet
