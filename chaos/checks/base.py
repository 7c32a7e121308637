"""What every check builds on: :class:`RunView` (one run's trace, indexed per request) and
:class:`Check` (name, where it applies, what it needs, and its verdict)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

from ..faults import TRANSIENT_KINDS
from ..results import CheckResult
from ..scenario import Scenario
from ..trace import AttemptRecord, Ending, HttpRecord, Trace

#: Exact comparisons of waits hold to the millisecond of virtual time.
WAIT_TOLERANCE = 1e-3
#: An event the fault rates predict at least this often must occur at least once: P(none) is at
#: most exp(-14) ~ 1e-6 (Poisson), so a run that shows none is "not exercised".
MIN_PREDICTED = 14.0

#: What a check reads: the provider's records, the runtime's attempt reports, the callers'
#: endings, or the runtime's selector directly (no trace).
Need = Literal["http", "attempts", "endings", "selector"]


@dataclass
class RunView:
    """One run, as the checks read it. ``trace`` is None for selector-only views."""

    scenario: Scenario
    seed: int
    trace: Trace | None
    #: (below, above) allowed deviation of a wait, in simulated seconds.
    tolerance: tuple[float, float] = (WAIT_TOLERANCE, WAIT_TOLERANCE)
    #: Extra ``init`` keyword arguments (a mutant's), for checks that build their own manager
    #: (the job keeps the mutant's patches applied while its checks run).
    extra_init: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def http(self) -> dict[int, list[HttpRecord]]:
        return self.trace.http_by_request() if self.trace else {}

    @cached_property
    def attempts(self) -> dict[int, list[AttemptRecord]]:
        return self.trace.attempts_by_request() if self.trace else {}

    @cached_property
    def endings(self) -> dict[int, list[Ending]]:
        return self.trace.endings_by_request() if self.trace else {}

    @property
    def requests(self) -> range:
        return range(self.trace.issued if self.trace else 0)

    @cached_property
    def weights(self) -> dict[str, float] | None:
        s = self.scenario
        return dict(zip(s.order, s.weights, strict=True)) if s.weights else None

    def wait_pairs(self) -> list[tuple[float, float, bool, str, float, float]]:
        """(expected, observed, governed by Retry-After, kind, low, high) for every gap between two
        attempts of a request. ``expected`` is the wait without jitter; with jitter ``j`` the
        runtime may shorten the backoff part to ``backoff ** k * (1 - j * u)``, so the wait lies
        in ``[low, high]``. A wait set by an HTTP-date Retry-After may be shorter than recorded
        by up to ``HTTP_DATE_SLACK`` (see ``chaos.faults.RetryAfter``)."""
        from ..faults import HTTP_DATE_SLACK

        backoffs = self.scenario.backoffs
        jitter = self.scenario.jitter
        dated = {
            k for k, f in self.scenario.providers.items() if f.retry_after.header == "http-date"
        }
        out = []
        for recs in self.http.values():
            attempt = 0
            for prev, nxt in itertools.pairwise(recs):
                gap = nxt.start - prev.end
                if nxt.key == prev.key:
                    attempt += 1
                    base = backoffs[prev.key] ** attempt
                    ra = prev.retry_after or 0.0
                    expected = max(base, ra)
                    low = max(base * (1 - jitter), ra)
                    governed = ra > base * (1 - jitter)
                    if governed and prev.key in dated and prev.retry_after_header == "retry-after":
                        low = max(base, ra - HTTP_DATE_SLACK)
                    out.append((expected, gap, governed, "retry", low, expected))
                else:
                    attempt = 0
                    out.append((0.0, gap, False, "fallback", 0.0, 0.0))
        return out


def blocks(records: Sequence[HttpRecord]) -> list[tuple[str, list[HttpRecord]]]:
    """Consecutive runs of HTTP requests to one model: ``[(model, records), ...]``."""
    out: list[tuple[str, list[HttpRecord]]] = []
    for rec in records:
        if out and out[-1][0] == rec.key:
            out[-1][1].append(rec)
        else:
            out.append((rec.key, [rec]))
    return out


def is_retryable(rec: HttpRecord, cap: float) -> bool:
    """Whether the policy retries the same model after this answer (before counting attempts)."""
    if rec.outcome not in TRANSIENT_KINDS:
        return False
    return not (rec.retry_after is not None and rec.retry_after > cap)


class Check:
    """One check. Subclasses set ``name``, ``description`` (one line, for the README and the
    report), ``path`` and ``needs``, may narrow :meth:`applies`, and implement :meth:`run`.

    Register a subclass with :func:`chaos.checks.register`; a scenario names it in its ``checks``.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: ``sdk``: judges a run's trace; ``selector``: draws from the runtime's selector itself.
    path: ClassVar[str] = "sdk"
    needs: ClassVar[frozenset[Need]] = frozenset({"http"})

    def applies(self, scenario: Scenario) -> bool:
        """Whether the check has anything to say about this scenario (else it is left out)."""
        return True

    def predicted_events(self, scenario: Scenario, n: int) -> float | None:
        """How many events the check judges that the fault rates predict for ``n`` requests
        (``None``: cannot tell, e.g. outage windows). Zero seen against at least
        :data:`MIN_PREDICTED` predicted is ``not exercised``."""
        return None

    def run(self, view: RunView) -> CheckResult:
        raise NotImplementedError

    # -- helpers for subclasses --------------------------------------------------------------
    def result(self, view: RunView, **kw: Any) -> CheckResult:
        kw.setdefault("path", self.path)
        return CheckResult(name=self.name, scenario=view.scenario.name, seed=view.seed, **kw)

    def exercised(self, view: RunView, events: int) -> tuple[bool, float | None]:
        """(exercised, predicted): a check with no events is exercised unless events were due."""
        predicted = self.predicted_events(view.scenario, len(view.requests))
        if events > 0:
            return True, predicted
        if predicted is None:
            return False, None
        return predicted < MIN_PREDICTED, predicted

    def exact(
        self,
        view: RunView,
        deviations: int,
        *,
        events: int,
        n: int,
        summary: str,
        details: dict[str, Any],
    ) -> CheckResult:
        """An exact check: it passes with no deviation from its rule, and is exercised when it
        saw ``events`` > 0 or the fault rates predicted too few to expect one."""
        exercised, predicted = self.exercised(view, events)
        if events == 0:
            note = (
                f" (none seen; {predicted:.3g} predicted)"
                if predicted is not None
                else " (none seen)"
            )
            summary += note
        return self.result(
            view,
            passed=deviations == 0 and exercised,
            statistic=float(deviations),
            p_value=None,
            n=n,
            method="exact",
            exercised=exercised,
            summary=summary,
            details=details,
            predicted_events=predicted,
        )
