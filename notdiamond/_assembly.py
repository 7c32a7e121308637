"""The pipeline of one ``init``: everything a call consults, assembled once.

It holds the per-model settings and retry policies, the fallback choice, the clock and sleep, and
the strategies switched on, indexed by the hooks each one overrides. The drivers that run a call
through it are in ``_pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any

from ._events import Observer
from ._strategy import HOOKS, Strategy, overrides

if TYPE_CHECKING:
    from ._config import ModelSettings
    from ._hedge_options import Hedging
    from ._policy import RetryPolicy


class Pipeline:
    """Everything a call consults, assembled once per ``init`` from the strategies switched on."""

    def __init__(
        self,
        *,
        settings: Mapping[str, ModelSettings],
        next_model: Callable[[Collection[str]], str | None],
        policies: Mapping[str, RetryPolicy],
        strategies: Sequence[Strategy],
        clock: Callable[[], float],
        sleep: Any,
        observer: Observer | None,
        deadline: float | None,
        first_chunk_timeouts: Mapping[str, float] | None = None,
        hedge: Hedging | None = None,
    ) -> None:
        self.settings = settings
        self.next_model = next_model
        self.policies = policies
        self.strategies = tuple(strategies)
        self.clock = clock
        self.sleep = sleep
        self.observer = observer
        self.deadline = deadline
        #: ``first_chunk_timeout`` of each model that has one (streamed attempts, SPEC 4.9).
        self.first_chunk_timeouts: Mapping[str, float] = first_chunk_timeouts or {}
        #: Hedged requests (async clients; their wrappers run calls on the hedged driver), or None.
        self.hedge = hedge
        #: Who sends each model's attempts: filled in once the wrappers exist.
        self.wrapper_of: dict[str, Any] = {}
        # For each hook, only the strategies that override it (a hook nobody overrides is skipped).
        by_hook = {hook: tuple(s for s in self.strategies if overrides(s, hook)) for hook in HOOKS}
        self.admit_by = by_hook["admit"]
        self.last_resort_by = by_hook["last_resort"]
        self.attempt_started_by = by_hook["attempt_started"]
        self.attempt_succeeded_by = by_hook["attempt_succeeded"]
        self.attempt_failed_by = by_hook["attempt_failed"]
        self.allow_retry_by = by_hook["allow_retry"]
        self.readmit_by = by_hook["readmit"]
        self.attempt_abandoned_by = by_hook["attempt_abandoned"]
        # The success path without dispatch, where the one strategy on a hook describes it.
        #: Keys ``admit`` must be asked about (``None``: every key; see ``FastPath.unsettled``).
        self.unsettled: Set[str] | None = None
        #: Per key, what ``attempt_succeeded`` does for a call probing nothing (``None``: dispatch).
        self.record_success: Mapping[str, Callable[[float], object]] | None = None
        if len(self.admit_by) == 1:
            self.unsettled = self.admit_by[0].fast_path().unsettled
        if len(self.attempt_succeeded_by) == 1:
            self.record_success = self.attempt_succeeded_by[0].fast_path().succeeded
        #: ``record_success`` when it is all a success of a call probing nothing needs (no
        #: observer to tell): the drivers then count it themselves.
        self.count_success = self.record_success if observer is None else None
        #: Whether a timed call must read the clock when it starts: its deadline, its observer
        #: events, hedging and the attempt-start hooks need the start time. Otherwise a call that
        #: every strategy admits as it is reads the clock only when its attempts end.
        self.start_clocked = (
            bool(self.attempt_started_by)
            or observer is not None
            or deadline is not None
            or hedge is not None
        )
        #: The keys a call (without a ``notdiamond.deadline`` block) must ask the strategies
        #: about and read the clock for when it starts; any other key is admitted as it is, and
        #: the call reads the clock only when its attempts end. ``None``: every call does both.
        self.asked_about: Set[str] | None = None
        if not self.start_clocked:
            if not self.admit_by:
                self.asked_about = frozenset()
            elif self.unsettled is not None:
                self.asked_about = self.unsettled
        #: Whether every call reads the clock (strategies, observers and deadlines need it).
        self.timed = (
            bool(self.strategies)
            or observer is not None
            or deadline is not None
            or hedge is not None
        )
