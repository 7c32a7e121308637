"""The retry budget of one model key, as Finagle and Envoy bound retries.

Within the last ``window`` seconds (events at ``t > now - window``), the same-model retries may
not exceed ``ratio`` times the first attempts on that model plus ``min_per_second * window``
(a floor, so a model with little traffic may still retry). A retry is granted, and counted, only
when one more still fits: ``retries + 1 <= ratio * first_attempts + min_per_second * window``.

Counting a first attempt takes no lock (a deque append); granting a retry takes a short one.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BudgetHealth:
    """The budget of one model as ``manager.health()`` shows it: the window's counts."""

    key: str
    first_attempts: int
    retries: int
    allowed: float  # retries the window allows now: ratio * first_attempts + floor


class BudgetState:
    """Counts of first attempts and granted retries over a sliding window. Thread-safe."""

    __slots__ = (
        "_firsts",
        "_lock",
        "_prune_at",
        "_retries",
        "floor",
        "key",
        "min_per_second",
        "ratio",
        "window",
    )

    def __init__(self, key: str, *, ratio: float, min_per_second: float, window: float) -> None:
        self.key = key
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = window
        self.floor = min_per_second * window
        self._lock = threading.Lock()
        self._firsts: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._prune_at = 256

    def first_attempt(self, now: float) -> None:
        """A call's first attempt on this model is about to be sent."""
        firsts = self._firsts
        firsts.append(now)
        if len(firsts) > self._prune_at:
            with self._lock:
                self._prune(now)

    def try_retry(self, now: float) -> bool:
        """Spend one retry if the window allows it; ``False`` (nothing spent) otherwise."""
        with self._lock:
            self._prune(now)
            if len(self._retries) + 1 <= self.ratio * len(self._firsts) + self.floor:
                self._retries.append(now)
                return True
            return False

    def health(self, now: float) -> BudgetHealth:
        with self._lock:
            self._prune(now)
            firsts = len(self._firsts)
            return BudgetHealth(
                self.key, firsts, len(self._retries), self.ratio * firsts + self.floor
            )

    def _prune(self, now: float) -> None:
        cutoff = now - self.window
        for times in (self._firsts, self._retries):
            while times and times[0] <= cutoff:
                times.popleft()
        self._prune_at = max(256, 2 * len(self._firsts))
