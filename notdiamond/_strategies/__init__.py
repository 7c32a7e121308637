"""The health-aware resilience strategies (circuit breaker, retry budget) and their assembly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from notdiamond._health.store import HealthStore, InProcessStore
from notdiamond._strategy import Strategy

from .breaker import CircuitBreaker, CircuitBreakerStrategy
from .budget import RetryBudget, RetryBudgetStrategy


def assemble(
    keys: Sequence[str],
    *,
    breaker: CircuitBreaker | None,
    budget: RetryBudget | None,
    retry_after_cap: float,
    report: Callable[[Any], object] | None = None,
    store: HealthStore | None = None,
) -> tuple[Strategy, ...]:
    """The strategies switched on, in pipeline order: the breaker, then the budget (it spends last).

    ``report`` (the manager's ``observer``) also receives the breaker's transitions.
    """
    health_store: HealthStore = InProcessStore() if store is None else store
    strategies: list[Strategy] = []
    if breaker is not None:
        strategies.append(
            CircuitBreakerStrategy(
                breaker, keys, retry_after_cap=retry_after_cap, store=health_store, report=report
            )
        )
    if budget is not None:
        strategies.append(RetryBudgetStrategy(budget, keys, store=health_store))
    return tuple(strategies)
