"""What ``manager.health()`` returns for each configured model (for dashboards)."""

from __future__ import annotations

from dataclasses import dataclass

from .budget import BudgetHealth
from .circuit import CircuitHealth, State


@dataclass(frozen=True, slots=True)
class ModelHealth:
    """One model's health as of the manager's clock.

    ``state`` is the breaker's (``closed``, ``open``, ``half_open``; always ``closed`` without a
    breaker), ``until`` the end of its current break (``None`` when closed). ``breaker`` and
    ``budget`` hold the counts behind them (``None`` when that strategy is off).
    """

    key: str
    state: State
    until: float | None
    breaker: CircuitHealth | None
    budget: BudgetHealth | None


def model_health(
    keys: tuple[str, ...],
    breakers: dict[str, CircuitHealth],
    budgets: dict[str, BudgetHealth],
) -> dict[str, ModelHealth]:
    health: dict[str, ModelHealth] = {}
    for key in keys:
        breaker = breakers.get(key)
        health[key] = ModelHealth(
            key=key,
            state="closed" if breaker is None else breaker.state,
            until=None if breaker is None else breaker.until,
            breaker=breaker,
            budget=budgets.get(key),
        )
    return health
