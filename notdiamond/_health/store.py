"""Where the health state of each model lives: the store interface and the in-process default.

The strategies never hold a breaker or a budget themselves: they ask the store for the one of a
model key, once, when the pipeline is assembled, and then talk to that object only. So a store
that shares state between processes (e.g. in Redis) plugs in by returning its own objects with
the same methods (:class:`CircuitPort`, :class:`BudgetPort`). The contract such objects keep:

- no I/O and no lock on the success path of a closed breaker (``is_closed``, ``success``), nor on
  ``first_attempt``: count locally and flush in batches;
- optionally, a ``not_closed`` attribute: one set, shared by the store's breakers, holding the key
  of every breaker that is not closed (added before the state leaves closed, removed after it is
  closed again). With it, admitting a call to a closed breaker costs no call at all;
- transitions (open, half-open, closed) made at once and reported to ``on_transition``;
- one probe at a time per model across everything that shares the store (a lease that expires);
- times given in the caller's own clock (``now``); a shared store keeps durations, not instants;
- never raise or block because the shared backend is unreachable: fall back to local state.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from .budget import BudgetHealth, BudgetState
from .circuit import Admission, Circuit, CircuitHealth, State, TransitionListener


class CircuitOptions(Protocol):
    """The breaker's settings, as the store needs them (``notdiamond.CircuitBreaker``)."""

    @property
    def consecutive_failures(self) -> int: ...
    @property
    def failure_ratio(self) -> float: ...
    @property
    def minimum_calls(self) -> int: ...
    @property
    def window(self) -> float: ...
    @property
    def break_duration(self) -> float: ...
    @property
    def max_break_duration(self) -> float: ...


class BudgetOptions(Protocol):
    """The retry budget's settings, as the store needs them (``notdiamond.RetryBudget``)."""

    @property
    def ratio(self) -> float: ...
    @property
    def min_per_second(self) -> float: ...
    @property
    def window(self) -> float: ...


@runtime_checkable
class CircuitPort(Protocol):
    """The breaker of one model key, as the strategy uses it (see :class:`~.circuit.Circuit`)."""

    @property
    def state(self) -> State: ...
    @property
    def until(self) -> float: ...
    def is_closed(self) -> bool: ...
    def admit(self, now: float) -> tuple[Admission, int]: ...
    def force_probe(self, now: float) -> int: ...
    def success(self, now: float, token: int = 0) -> None: ...
    def failure(self, now: float, retry_after: float | None = None, token: int = 0) -> None: ...
    def release(self, token: int) -> None: ...
    def health(self, now: float) -> CircuitHealth: ...


@runtime_checkable
class BudgetPort(Protocol):
    """The retry budget of one model key (see :class:`~.budget.BudgetState`)."""

    def first_attempt(self, now: float) -> None: ...
    def try_retry(self, now: float) -> bool: ...
    def health(self, now: float) -> BudgetHealth: ...


class HealthStore(Protocol):
    """Hands out the breaker and the retry budget of each model key (the same object every time)."""

    def circuit(
        self,
        key: str,
        options: CircuitOptions,
        *,
        retry_after_cap: float,
        on_transition: TransitionListener | None,
    ) -> CircuitPort: ...

    def budget(self, key: str, options: BudgetOptions) -> BudgetPort: ...


class InProcessStore:
    """The default store: state in this process's memory, shared by its threads and tasks.

    The objects are created when the pipeline is assembled (at ``init``, for the configured
    keys), so looking one up later never takes a lock; each object guards itself.
    """

    def __init__(self) -> None:
        self._circuits: dict[str, Circuit] = {}
        self._budgets: dict[str, BudgetState] = {}
        #: The keys whose breaker is not closed (kept by the breakers; see ``Circuit``).
        self.not_closed: set[str] = set()

    def circuit(
        self,
        key: str,
        options: CircuitOptions,
        *,
        retry_after_cap: float = math.inf,
        on_transition: TransitionListener | None = None,
    ) -> Circuit:
        found = self._circuits.get(key)
        if found is None:
            found = self._circuits[key] = Circuit(
                key,
                consecutive_failures=options.consecutive_failures,
                failure_ratio=options.failure_ratio,
                minimum_calls=options.minimum_calls,
                window=options.window,
                break_duration=options.break_duration,
                max_break_duration=options.max_break_duration,
                retry_after_cap=retry_after_cap,
                on_transition=on_transition,
                not_closed=self.not_closed,
            )
        return found

    def budget(self, key: str, options: BudgetOptions) -> BudgetState:
        found = self._budgets.get(key)
        if found is None:
            found = self._budgets[key] = BudgetState(
                key,
                ratio=options.ratio,
                min_per_second=options.min_per_second,
                window=options.window,
            )
        return found
