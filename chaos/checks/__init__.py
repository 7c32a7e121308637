"""The checks: a registry of small :class:`~chaos.checks.base.Check` classes, one module each.

A check reads one run (:class:`~chaos.checks.base.RunView`: the fake providers' records, the
runtime's attempt reports, the callers' endings) or draws from the runtime's selector directly,
and returns a :class:`~chaos.results.CheckResult`. The ground truth is what the fake providers saw,
compared with what the configuration promises (``chaos/README.md`` states each rule), never with
what the runtime says it did.

To add a check: write ``chaos/checks/<name>.py`` with a ``Check`` subclass decorated with
:func:`register`, import the module at the bottom of this file, and name it in the ``checks`` of
the scenarios it should judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ..results import CheckResult
from ..scenario import Scenario
from .base import Check, RunView

C = TypeVar("C", bound=type[Check])

#: Every registered check, in report order; one name may have an ``sdk`` and a ``selector`` check.
REGISTRY: list[Check] = []


def register(cls: C) -> C:
    """Class decorator: add one instance of the check to :data:`REGISTRY`."""
    REGISTRY.append(cls())
    return cls


def check_names() -> tuple[str, ...]:
    """Every check name a scenario may list, in report order."""
    return tuple(dict.fromkeys(c.name for c in REGISTRY))


def checks_for(
    scenario: Scenario, names: Sequence[str], *, paths: Sequence[str] = ("sdk", "selector")
) -> list[Check]:
    """The registered checks named in ``names``, on one of ``paths``, that apply to the scenario."""
    wanted = set(names)
    chosen = [c for c in REGISTRY if c.name in wanted and c.path in paths and c.applies(scenario)]
    return sorted(chosen, key=lambda c: c.path != "sdk")  # stable: trace checks first


def run_checks(
    view: RunView, names: Sequence[str], *, paths: Sequence[str] = ("sdk", "selector")
) -> list[CheckResult]:
    return [c.run(view) for c in checks_for(view.scenario, names, paths=paths)]


def needs_traffic(checks: Sequence[Check]) -> bool:
    """Whether any of ``checks`` reads a run's trace (else the job sends no traffic)."""
    return any(c.needs - {"selector"} for c in checks)


# the checks, in report order (each module registers its classes on import)
from . import (  # noqa: E402
    attempt_fields,
    attempts_per_policy,
    backoff_waits,
    breaker_reference,
    conservation,
    deadline,
    fallback_order,
    fallback_weights,
    final_error,
    first_choice_weights,
    fleet_conservation,
    fleet_dead_primary,
    fleet_skip_lag,
    hedging,
    open_weights,
    redis_expiry,
    redis_outage,
    retry_budget,
    selector,
    stream_first_chunk,
    success_rate,
)

__all__ = [
    "REGISTRY",
    "Check",
    "CheckResult",
    "RunView",
    "attempt_fields",
    "attempts_per_policy",
    "backoff_waits",
    "breaker_reference",
    "check_names",
    "checks_for",
    "conservation",
    "deadline",
    "fallback_order",
    "fallback_weights",
    "final_error",
    "first_choice_weights",
    "fleet_conservation",
    "fleet_dead_primary",
    "fleet_skip_lag",
    "hedging",
    "needs_traffic",
    "open_weights",
    "redis_expiry",
    "redis_outage",
    "register",
    "retry_budget",
    "run_checks",
    "selector",
    "stream_first_chunk",
    "success_rate",
]
