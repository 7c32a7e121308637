"""Fleet check: after the run, every key the runtime left in Redis carries a TTL within its bound,
so nothing outlives its window and a crashed process leaves nothing stuck."""

from __future__ import annotations

from ..health import breaker_of, budget_of
from ..results import CheckResult
from . import register
from .base import Check, RunView
from .fleet_bounds import fleet_of

#: The epoch marker's life (RedisState refreshes it on every sync): one day.
EPOCH_TTL_MS = 86_400_000


@register
class RedisExpiry(Check):
    name = "redis_expiry"
    description = (
        "every key under the run's prefix left in Redis has a TTL, at most its bound: window + a "
        "bucket, break + max(max_break, probe_lease), probe_lease; the epoch marker a day (exact)"
    )
    needs = frozenset({"http"})

    def applies(self, scenario: object) -> bool:
        return getattr(scenario, "mode", None) == "fleet"

    def run(self, view: RunView) -> CheckResult:
        _, info = fleet_of(view.trace)
        ttls = info.redis_ttls
        breaker = breaker_of(view.scenario.config)
        budget = budget_of(view.scenario.config)
        fleet = view.scenario.fleet
        lease = fleet.probe_lease if fleet else 0.0
        longest = lease
        if breaker is not None:
            max_break = float(breaker.max_break_duration)
            longest = max(
                longest,
                float(breaker.window) * 1.1,
                max_break + max(max_break, lease),
            )
        if budget is not None:
            longest = max(longest, float(budget.window) * 1.1)
        bound_ms = longest * 1000 + 1
        bad = {}
        for key, ttl in ttls.items():
            limit = EPOCH_TTL_MS if key.endswith(":epoch") else bound_ms
            if not 0 <= ttl <= limit:
                bad[key] = ttl
        return self.exact(
            view,
            len(bad),
            events=len(ttls),
            n=len(ttls),
            summary=(
                f"{len(ttls)} keys left in Redis, {len(bad)} without a TTL within its bound "
                f"(at most {longest:g} s; epoch a day)"
                + (f": {sorted(bad.items())[:4]}" if bad else "")
            ),
            details={"ttls_ms": ttls, "bad": bad, "bound_s": longest},
        )
