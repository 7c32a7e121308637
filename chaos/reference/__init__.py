"""Reference models of the health strategies, written apart from the runtime (issue 12 section 5).

The harness replays each run's trace through them and requires the runtime's decisions to agree
exactly, in virtual time.
"""

from __future__ import annotations

from .breaker import BreakerConfig, ReferenceBreaker
from .budget import BudgetConfig, ReferenceBudget

__all__ = ["BreakerConfig", "BudgetConfig", "ReferenceBreaker", "ReferenceBudget"]
