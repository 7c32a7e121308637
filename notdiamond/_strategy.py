"""The contract between a call's pipeline and a resilience strategy.

A strategy (circuit breaker, retry budget, ...) subclasses :class:`Strategy` and overrides only the
hooks it needs. The pipeline is assembled once per ``init``: for each hook it keeps only the
strategies that override it, so a hook nobody overrides costs nothing per call, and a strategy that
is switched off is simply not in the pipeline. ``now`` is always the manager's injected clock.

What a hook may read of its call is :class:`CallView` (the runtime's ``CallState`` provides it).

A strategy may also describe, in :class:`FastPath`, what its ``admit`` and ``attempt_succeeded``
do on a call's success path, so that the pipeline can do it without dispatching the hooks (see
:meth:`Strategy.fast_path`).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence, Set
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

#: What a strategy says of a model before a call's first attempt on it: try it; try it with exactly
#: one attempt (a half-open breaker's probe); or skip it (treated as failed for this call).
Admission = Literal["admit", "probe", "skip"]


class CallView(Protocol):
    """What a strategy may read of the call it is consulted on (the runtime's ``CallState``)."""

    @property
    def call_id(self) -> int: ...  # unique per call (set before any hook sees the call)
    @property
    def key(self) -> str: ...  # the model key of the current attempt
    @property
    def attempt(self) -> int: ...  # its attempt number on that model (1 = first)
    @property
    def started(self) -> float: ...  # the clock when the call started (see below)
    @property
    def deadline(self) -> float | None: ...  # the clock time the call must end by, if any
    @property
    def failed(self) -> set[str]: ...  # models given up on in this call (failed or skipped)
    @property
    def probing(self) -> str | None: ...  # the model this call probes (one attempt), if any
    @property
    def sent(self) -> int: ...  # attempts sent so far
    @property
    def clamped(self) -> bool: ...  # the current attempt's timeout was cut to the time left

    # ``started`` is read from the clock only when something needs it: a deadline, an observer,
    # hedging, an ``attempt_started`` hook, or an ``admit`` hook asked about the first model.
    # Otherwise (a breaker that is closed, say) it is 0.0, and only attempts' ends read the clock.


#: The hooks a pipeline dispatches, in the order a call meets them.
HOOKS: tuple[str, ...] = (
    "admit",
    "last_resort",
    "attempt_started",
    "attempt_succeeded",
    "attempt_failed",
    "allow_retry",
    "readmit",
    "attempt_abandoned",
)


@dataclass(frozen=True, slots=True)
class FastPath:
    """What a strategy's hooks do on the success path, for the pipeline to do without calling them.

    ``unsettled``: the model keys for which ``admit`` might answer anything but ``"admit"`` (or
    change anything); the pipeline calls ``admit`` only for those. A live set that the strategy
    keeps current: a key enters it before ``admit`` could answer otherwise, and leaves it only
    once ``admit`` would admit it again without doing anything. ``None``: ``admit`` is always called.

    ``succeeded``: per model key, what ``attempt_succeeded(call, key, now)`` does for a call that
    probes nothing (``call.probing is None``): ``succeeded[key](now)``. ``None``: the hook is
    always called. The pipeline keeps this mapping and reads it at each success, so whoever wraps
    the strategy's ``attempt_succeeded`` (a recorder) wraps its entries too, in place.
    """

    unsettled: Set[str] | None = None
    succeeded: MutableMapping[str, Callable[[float], object]] | None = None


#: No fast path: every hook is dispatched.
NO_FAST_PATH: FastPath = FastPath()


class Strategy:
    """Base class of a resilience strategy: every hook is a no-op that the pipeline never calls."""

    #: A short name for logs, events and ``manager.strategies``.
    name: ClassVar[str] = "strategy"

    def fast_path(self) -> FastPath:
        """What ``admit`` and ``attempt_succeeded`` do on the success path (see :class:`FastPath`);
        asked once, when the pipeline is assembled. By default: nothing is known, every hook is
        dispatched."""
        return NO_FAST_PATH

    def admit(self, call: CallView, key: str, now: float) -> Admission:
        """Before the call's first attempt on ``key`` (first choice and every fallback)."""
        return "admit"

    def last_resort(self, call: CallView, skipped: Sequence[str], now: float) -> str | None:
        """Every remaining model was skipped and nothing was sent yet: one to probe anyway."""
        return None

    def attempt_started(self, call: CallView, key: str, attempt: int, now: float) -> None:
        """Attempt ``attempt`` (1 = the first on ``key`` in this call) is about to be sent."""

    def attempt_succeeded(self, call: CallView, key: str, now: float) -> None:
        """The attempt on ``key`` answered."""

    def attempt_failed(self, call: CallView, key: str, exc: Exception, now: float) -> None:
        """The attempt on ``key`` failed with ``exc`` (before any retry decision)."""

    def allow_retry(self, call: CallView, key: str, wait: float, now: float) -> bool:
        """The retry policy wants another attempt on ``key`` after ``wait`` s; False: fall back.

        Strategies are asked in pipeline order and the first False ends the asking, so one that
        spends something (a budget token) comes last and spends only when it returns True.
        """
        return True

    def readmit(self, call: CallView, key: str, now: float) -> bool:
        """A wait before a retry of ``key`` just ended; False: the model opened meanwhile."""
        return True

    def attempt_abandoned(self, call: CallView, key: str) -> None:
        """The attempt on ``key`` ended without an outcome (cancelled, interrupted)."""


def overrides(strategy: Strategy, hook: str) -> bool:
    """Whether ``strategy`` has its own ``hook`` (the pipeline dispatches only those)."""
    return getattr(type(strategy), hook) is not getattr(Strategy, hook)
