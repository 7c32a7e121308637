"""A reference model of the retry budget, written apart from the runtime, for exact comparison.

Rule (issue 12 section 4): for each model, at a retry request at time ``now``, let ``F`` be the
first attempts recorded at times ``t > now - window`` and ``R`` the retries granted at such
times. The retry is granted (and recorded) iff ``R + 1 <= ratio * F + min_per_second * window``.
The whole history is kept and rescanned at each request.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BudgetConfig:
    ratio: float = 0.2
    min_per_second: float = 1.0
    window: float = 10.0


@dataclass
class _History:
    firsts: list[float] = field(default_factory=list)
    granted: list[float] = field(default_factory=list)


class ReferenceBudget:
    def __init__(self, config: BudgetConfig) -> None:
        self.config = config
        self.models: dict[str, _History] = {}

    def first_attempt(self, at: float, key: str) -> None:
        self.models.setdefault(key, _History()).firsts.append(at)

    def retry(self, at: float, key: str) -> bool:
        cfg = self.config
        h = self.models.setdefault(key, _History())
        horizon = at - cfg.window
        firsts = sum(1 for t in h.firsts if t > horizon)
        granted = sum(1 for t in h.granted if t > horizon)
        if granted + 1 <= cfg.ratio * firsts + cfg.min_per_second * cfg.window:
            h.granted.append(at)
            return True
        return False
