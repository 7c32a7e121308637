"""Sample sizes by power analysis, computed (never hard-coded).

The target, from issue 3: detect a deviation of ``DELTA`` = 1 percentage point at significance
``ALPHA`` = 0.001 with power ``POWER`` = 0.99.

* Weights (chi-square goodness of fit, ``k`` categories): the test statistic under a true
  distribution ``p1`` is approximately non-central chi-square with ``k - 1`` degrees of freedom and
  non-centrality ``n * w2``, where ``w2 = sum((p1 - p0)**2 / p0)`` (Cohen's effect size squared).
  The hardest 1-point deviation to see moves one category by ``DELTA`` and spreads the difference
  over the others in proportion to their weights; we take the smallest ``w2`` over the
  categories. ``n`` is the least number with ``P(ncx2(k-1, n*w2) > chi2_crit) >= POWER``.
  For 0.9/0.1 that is about 28 thousand draws, for 0.5/0.25/0.25 about 92 thousand.
* A success rate (binomial): the two-sided normal approximation,
  ``n = ((z_{1-a/2} sqrt(p0 q0) + z_power sqrt(p1 q1)) / DELTA) ** 2``, with ``p1 = p0 - DELTA``
  (or ``p0 + DELTA`` when that is the harder side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from scipy import optimize, stats

ALPHA: Final = 0.001
POWER: Final = 0.99
DELTA: Final = 0.01


def least_effect(p0: Sequence[float], delta: float = DELTA) -> float:
    """Cohen's ``w**2`` of the least visible deviation of ``delta`` from ``p0``."""
    total = sum(p0)
    p = [x / total for x in p0 if x > 0]
    if len(p) < 2:
        return math.inf
    best = math.inf
    for i, pi in enumerate(p):
        rest = 1.0 - pi
        w2 = delta**2 / pi + sum(
            ((delta * pj / rest) ** 2) / pj for j, pj in enumerate(p) if j != i
        )
        best = min(best, w2)
    return best


def chi2_power(n: int, w2: float, df: int, alpha: float = ALPHA) -> float:
    """Power of the chi-square goodness-of-fit test with ``n`` draws against effect ``w2``."""
    crit = stats.chi2.isf(alpha, df)
    return float(stats.ncx2.sf(crit, df, n * w2))


def chi2_sample_size(
    p0: Sequence[float], delta: float = DELTA, alpha: float = ALPHA, power: float = POWER
) -> int:
    """Draws needed to detect any ``delta`` deviation from ``p0`` (goodness of fit)."""
    k = sum(1 for x in p0 if x > 0)
    if k < 2:
        return 0
    df = k - 1
    w2 = least_effect(p0, delta)
    crit = stats.chi2.isf(alpha, df)
    lam = optimize.brentq(lambda lam: stats.ncx2.sf(crit, df, lam) - power, 1e-6, 1e4)
    return math.ceil(float(lam) / w2)


def detectable_delta(
    p0: Sequence[float], n: int, alpha: float = ALPHA, power: float = POWER
) -> float:
    """The least deviation (in probability) that ``n`` draws detect with ``power``."""
    if n <= 0:
        return math.inf
    lo, hi = 1e-5, 0.5
    for _ in range(60):
        mid = (lo + hi) / 2
        if chi2_sample_size(p0, mid, alpha, power) <= n:
            hi = mid
        else:
            lo = mid
    return hi


def binomial_sample_size(
    p0: float, delta: float = DELTA, alpha: float = ALPHA, power: float = POWER
) -> int:
    """Requests needed to detect a ``delta`` change of a success probability ``p0``."""
    za = stats.norm.isf(alpha / 2)
    zb = stats.norm.isf(1 - power)
    best = 0
    for p1 in (p0 - delta, p0 + delta):
        if not 0 < p1 < 1:
            continue
        n = ((za * math.sqrt(p0 * (1 - p0)) + zb * math.sqrt(p1 * (1 - p1))) / delta) ** 2
        best = max(best, math.ceil(n))
    return best
