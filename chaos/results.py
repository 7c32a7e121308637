"""What a run produces: one :class:`CheckResult` per check, one :class:`JobResult` per job.

Plain data, shared by the checks, the jobs and the report (the report never imports the runner).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "fail", "not exercised"]


@dataclass
class CheckResult:
    name: str
    scenario: str
    passed: bool
    statistic: float | None
    p_value: float | None
    n: int
    seed: int
    #: ``chi-square``, ``binomial``, ``exact``, ``KS + bounds``.
    method: str
    #: Where the draws came from: ``sdk`` (real SDK + fake provider) or ``selector``.
    path: str = "sdk"
    #: Whether the run produced anything for the check to judge.
    exercised: bool = True
    #: The power analysis's sample size for this check (statistical checks).
    required_n: int | None = None
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    mutant: str | None = None
    #: Events the fault rates predict for this run (what "exercised" is judged against).
    predicted_events: float | None = None

    @property
    def verdict(self) -> Verdict:
        """``pass``; ``fail``; or ``not exercised``: nothing to judge although something was due."""
        if self.passed:
            return "pass"
        return "fail" if self.exercised else "not exercised"

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict
        for key in ("statistic", "p_value"):
            v = out[key]
            if isinstance(v, float) and not math.isfinite(v):
                out[key] = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return out


@dataclass
class JobResult:
    label: str
    scenario: str
    mutant: str | None
    seed: int
    n: int
    checks: list[CheckResult]
    wall_s: float
    virtual_s: float
    http_requests: int
    plot: dict[str, Any] = field(default_factory=dict)
    max_in_flight: int = 0
    error: str | None = None
    #: CPU seconds the job's process spent on it (wall time minus waiting for a core).
    cpu_s: float = 0.0
