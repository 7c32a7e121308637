"""The retry budget as a pipeline strategy: ``init(..., retry_budget=RetryBudget(...))``.

Per model, as Finagle and Envoy bound retries: within the last ``window`` seconds, same-model
retries may not exceed ``ratio`` times the calls' first attempts on that model plus
``min_per_second * window``. With the budget spent, a failed attempt falls back at once instead
of retrying. The counts live in the health store (:class:`notdiamond._health.budget.BudgetState`).
It spends in ``allow_retry``, so it must be the last strategy asked there (the pipeline puts it
after the circuit breaker): a retry refused by another strategy never spends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from notdiamond._health.budget import BudgetHealth
from notdiamond._health.store import BudgetPort, HealthStore, InProcessStore
from notdiamond._strategy import CallView, Strategy

from . import _checks


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Settings of the per-model retry budget (``notdiamond.RetryBudget``)."""

    ratio: float = 0.2
    min_per_second: float = 1.0
    window: float = 10.0

    def __post_init__(self) -> None:
        fields = {
            "ratio": _checks.non_negative("RetryBudget(ratio=...)", self.ratio, "ratio=0.2"),
            "min_per_second": _checks.non_negative(
                "RetryBudget(min_per_second=...)", self.min_per_second, "min_per_second=1.0"
            ),
            "window": _checks.seconds("RetryBudget(window=...)", self.window, "window=10.0"),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)


def retry_budget_option(value: object) -> RetryBudget | None:
    """The init option ``retry_budget=``: ``True`` = the defaults, ``None``/``False`` = off."""
    return _checks.switch("retry_budget", value, RetryBudget)


class RetryBudgetStrategy(Strategy):
    """Refuses a same-model retry when the model's budget for the window is spent."""

    name: ClassVar[str] = "retry_budget"

    def __init__(
        self, options: RetryBudget, keys: Sequence[str], *, store: HealthStore | None = None
    ) -> None:
        self.options = options
        health_store: HealthStore = InProcessStore() if store is None else store
        self.budgets: dict[str, BudgetPort] = {
            key: health_store.budget(key, options) for key in keys
        }

    def attempt_started(self, call: CallView, key: str, attempt: int, now: float) -> None:
        if attempt == 1:
            self.budgets[key].first_attempt(now)

    def allow_retry(self, call: CallView, key: str, wait: float, now: float) -> bool:
        return self.budgets[key].try_retry(now)

    def health(self, now: float) -> dict[str, BudgetHealth]:
        return {key: budget.health(now) for key, budget in self.budgets.items()}
