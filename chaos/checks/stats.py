"""Statistics shared by the checks: weights, goodness of fit, confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scipy import stats


def normalised(weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(w for w in weights.values() if w > 0)
    return {k: w / total for k, w in weights.items() if w > 0}


def wilson(count: int, n: int, alpha: float = 0.01) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    z = stats.norm.isf(alpha / 2)
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def goodness_of_fit(
    observed: Mapping[str, int], expected_p: Mapping[str, float]
) -> tuple[float, float, int]:
    """(chi-square, p-value, n) of observed counts against probabilities."""
    keys = list(expected_p)
    n = sum(observed.get(k, 0) for k in keys) + sum(
        v for k, v in observed.items() if k not in expected_p
    )
    if n == 0:
        return (math.nan, math.nan, 0)
    stray = sum(v for k, v in observed.items() if k not in expected_p)
    if stray:  # a model that should never be drawn was: infinitely unlikely
        return (math.inf, 0.0, n)
    obs = [observed.get(k, 0) for k in keys]
    exp = [expected_p[k] * n for k in keys]
    result = stats.chisquare(obs, exp)
    return float(result.statistic), float(result.pvalue), n


def weight_table(
    observed: Mapping[str, int], expected_p: Mapping[str, float]
) -> list[dict[str, Any]]:
    n = sum(observed.values())
    rows = []
    for k in sorted(set(expected_p) | set(observed)):
        c = observed.get(k, 0)
        lo, hi = wilson(c, n)
        rows.append(
            {
                "model": k,
                "count": c,
                "observed": c / n if n else math.nan,
                "expected": expected_p.get(k, 0.0),
                "ci99": [lo, hi],
            }
        )
    return rows
