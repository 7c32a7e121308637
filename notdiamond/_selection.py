"""Model selection: which model a call tries first, and which one it falls back to.

A priority list falls back in list order; a weighted dict draws from the weights of the models not
yet failed in this call, renormalised. Randomness comes from the selector's own generator.
"""

from __future__ import annotations

import math
import random
import threading
from bisect import bisect_right
from collections.abc import Collection
from itertools import accumulate
from typing import Protocol


class ModelSelector(Protocol):
    """Chooses model keys for one call."""

    #: The first model when it never varies (a priority list), else ``None``.
    fixed_first: str | None

    def first(self) -> str:
        """The model a ``model="notdiamond"`` call tries first."""
        ...

    def next_model(self, failed: Collection[str]) -> str | None:
        """The model to fall back to once ``failed`` have failed; ``None`` when none is left."""
        ...


class PriorityOrder:
    """Models in the order given; fallback is the first one not yet failed."""

    def __init__(self, order: tuple[str, ...]) -> None:
        self.order = order
        self.fixed_first: str | None = order[0]

    def first(self) -> str:
        return self.order[0]

    def next_model(self, failed: Collection[str]) -> str | None:
        for key in self.order:
            if key not in failed:
                return key
        return None


class WeightedDraw:
    """Models drawn by weight; fallback draws over the remaining positive weights.

    A weight of 0 is never drawn, not even as a fallback. The generator is shared by all calls
    through the manager, so draws take a short lock (never held across I/O).
    """

    def __init__(
        self, order: tuple[str, ...], weights: tuple[float, ...], rng: random.Random
    ) -> None:
        candidates = [(k, w) for k, w in zip(order, weights, strict=True) if w > 0]
        self.keys = tuple(k for k, _ in candidates)
        self.weights = tuple(w for _, w in candidates)
        self._cumulative = _cumulative(self.weights)
        self._rng = rng
        self._lock = threading.Lock()
        self.fixed_first: str | None = None

    def _draw(self, keys: tuple[str, ...], cumulative: tuple[float, ...]) -> str:
        with self._lock:
            u = self._rng.random()
        # u < 1, so u * total < total; min() guards the last ulp of floating-point rounding.
        return keys[min(bisect_right(cumulative, u * cumulative[-1]), len(keys) - 1)]

    def first(self) -> str:
        return self._draw(self.keys, self._cumulative)

    def next_model(self, failed: Collection[str]) -> str | None:
        remaining = [
            (k, w) for k, w in zip(self.keys, self.weights, strict=True) if k not in failed
        ]
        if not remaining:
            return None
        keys = tuple(k for k, _ in remaining)
        return self._draw(keys, _cumulative(tuple(w for _, w in remaining)))


def _cumulative(weights: tuple[float, ...]) -> tuple[float, ...]:
    """Running sums of ``weights`` scaled by a power of two that brings the largest into [0.5, 1).

    So the total never overflows (two weights of 1e308 draw half and half) and the smallest
    weights keep their precision (two of 5e-324 too). Scaling by a power of two is exact, so
    draws are the same as from the unscaled sums wherever those are finite.
    """
    _, exponent = math.frexp(max(weights))
    return tuple(accumulate(math.ldexp(w, -exponent) for w in weights))
