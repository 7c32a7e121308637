"""The ``hedge=`` option of ``init``: :class:`Hedge` (its settings and their validation), and
:class:`Hedging`, what they mean at run time: the delay before each attempt is hedged.

The option's row is in ``_options.OPTIONS``; the hedged driver itself is ``_hedging``. Numbers are
read with ``_numbers``' readers, so every real number type is accepted as for the other options.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ._numbers import MAX_WAIT, describe, real_number, whole_number

if TYPE_CHECKING:
    from ._config import Config

_PERCENTILE: Final = re.compile(r"p([0-9]+(?:\.[0-9]+)?)")
_DELAY_HINT: Final = (
    "Use seconds >= 0 such as 2.0, or a percentile of the model's recent latencies such as 'p95'."
)


def _seconds(name: str, value: object, example: str) -> float:
    where = f"Hedge({name}=...)"
    seconds = real_number(value, where=where, expected=f"seconds as a number, e.g. {example}")
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_WAIT:
        raise ValueError(
            f"Hedge({name}={describe(value)}): not a usable number of seconds. Use a finite "
            f"number >= 0 (at most {MAX_WAIT:g}), e.g. {example}."
        )
    return seconds


def _count(name: str, value: object, fix: str) -> int:
    number = whole_number(value, where=f"Hedge({name}=...)", expected=f"a whole number. {fix}")
    if number < 1:
        raise ValueError(f"Hedge({name}={number}): must be 1 or more. {fix}")
    return number


@dataclass(frozen=True, slots=True)
class Hedge:
    """Hedged requests: ``notdiamond.init(..., hedge=notdiamond.Hedge(delay=2.0))`` (async clients).

    When an attempt has produced no response (for a stream: no first chunk) after ``delay``
    seconds, an attempt on the next model (the fallback choice) starts in parallel; the first
    answer wins and the others are cancelled.

    Args:
        delay: Seconds without a response after which an attempt on the next model starts in
            parallel; or a percentile ``"pQ"`` (0 < Q <= 100, e.g. ``"p95"``) of the slow
            model's own latencies over its recent successes.
        max_extra: Most extra attempts in flight at once (never more than ``1 + max_extra``).
        initial_delay: Percentile delays: the delay used until ``min_samples`` successes of the
            model have been seen.
        min_delay: Percentile delays: the floor of the delay, in seconds.
        min_samples: Percentile delays: successes needed before the percentile is used.
        window: Percentile delays: how many of each model's most recent successes are kept.
    """

    delay: float | str = 2.0
    max_extra: int = 1
    initial_delay: float = 2.0
    min_delay: float = 0.05
    min_samples: int = 20
    window: int = 200
    #: The percentile of a ``"pQ"`` delay (``Q``), else ``None``.
    quantile: float | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        def put(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        delay = self.delay
        if isinstance(delay, str):
            match = _PERCENTILE.fullmatch(delay)
            quantile = float(match.group(1)) if match else math.nan
            if not 0 < quantile <= 100:
                raise ValueError(
                    f"Hedge(delay={describe(delay)}): not a delay. {_DELAY_HINT} A percentile is "
                    "'p' and a number above 0 and at most 100: 'p50', 'p95', 'p99.9'."
                )
            put("quantile", quantile)
        else:
            try:
                put("delay", _seconds("delay", delay, "delay=2.0"))
            except TypeError:
                raise TypeError(
                    f"Hedge(delay={describe(delay)}): not a delay. {_DELAY_HINT}"
                ) from None
        put(
            "max_extra",
            _count(
                "max_extra",
                self.max_extra,
                "It is the most extra attempts in flight at once, e.g. max_extra=1; to switch "
                "hedging off, pass hedge=None.",
            ),
        )
        initial = _seconds("initial_delay", self.initial_delay, "initial_delay=2.0")
        floor = _seconds("min_delay", self.min_delay, "min_delay=0.05")
        if initial < floor:
            raise ValueError(
                f"Hedge(initial_delay={describe(self.initial_delay)}, "
                f"min_delay={describe(self.min_delay)}): the initial delay is below the floor. "
                "Raise initial_delay or lower min_delay."
            )
        put("initial_delay", initial)
        put("min_delay", floor)
        samples = _count(
            "min_samples",
            self.min_samples,
            "It is how many successes of a model are needed before its latency percentile is "
            "used, e.g. min_samples=20.",
        )
        window = _count(
            "window", self.window, "It is how many recent successes are kept, e.g. window=200."
        )
        if window < samples:
            raise ValueError(
                f"Hedge(window={window}, min_samples={samples}): the window must hold at least "
                "min_samples latencies. Raise window or lower min_samples."
            )
        put("min_samples", samples)
        put("window", window)


class LatencyWindow:
    """One model's most recent success latencies (a bounded window), and their percentiles."""

    __slots__ = ("_lock", "_samples", "_sorted")

    def __init__(self, size: int) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._sorted: list[float] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)
            self._sorted = None

    def percentile(self, quantile: float) -> float:
        """The nearest-rank ``quantile`` percentile (0 < quantile <= 100); the window is not empty."""
        with self._lock:
            ordered = self._sorted
            if ordered is None:
                ordered = self._sorted = sorted(self._samples)
        rank = max(1, math.ceil(quantile / 100.0 * len(ordered)))
        return ordered[rank - 1]


class Hedging:
    """One manager's hedging: its options and, for percentile delays, each model's latencies."""

    def __init__(self, options: Hedge, keys: Iterable[str]) -> None:
        self.options = options
        self.max_in_flight = 1 + options.max_extra
        self.quantile = options.quantile
        self.latencies: dict[str, LatencyWindow] = (
            {} if self.quantile is None else {key: LatencyWindow(options.window) for key in keys}
        )

    def delay_for(self, key: str) -> float:
        """Seconds an attempt on ``key`` may go without a response before a hedge starts."""
        options = self.options
        if self.quantile is None:
            return options.delay  # type: ignore[return-value]  # a number once validated
        window = self.latencies[key]
        if len(window) < options.min_samples:
            return options.initial_delay
        return max(options.min_delay, window.percentile(self.quantile))

    def record(self, key: str, seconds: float) -> None:
        """A success of ``key`` answered after ``seconds`` (kept only for percentile delays)."""
        window = self.latencies.get(key)
        if window is not None:
            window.add(seconds)


def check_hedge(value: object, *, is_async: bool) -> Hedge | None:
    """The ``hedge=`` option: a :class:`Hedge`, ``True`` (the defaults) or ``None``/``False``
    (off); hedging needs async clients."""
    if value is None or value is False:
        return None
    if value is True:
        value = Hedge()
    if not isinstance(value, Hedge):
        raise TypeError(
            f"hedge must be notdiamond.Hedge(...), True (the defaults) or None/False (off), got "
            f"{describe(value)}. E.g. hedge=notdiamond.Hedge(delay=2.0, max_extra=1)."
        )
    if not is_async:
        raise ValueError(
            "hedge= runs attempts in parallel and needs async clients: use an async client "
            "(AsyncOpenAI, AsyncAzureOpenAI), or drop hedge= for sync clients."
        )
    return value


def check_hedge_models(hedge: Hedge | None, config: Config) -> None:
    """A hedge goes to the next model: at least two models must be usable."""
    if hedge is None:
        return
    weights = config.weights
    usable = [
        key
        for i, key in enumerate(config.order)
        if weights is None or weights[i] > 0  # a weight of 0 is never a fallback either
    ]
    if len(usable) < 2:
        raise ValueError(
            f"hedge= sends the extra attempt to the next model, but only {usable} can be tried. "
            "Configure a fallback model, or drop hedge=."
        )
