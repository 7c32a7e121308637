"""Deliberately broken runtimes: the checks must catch every one of them.

Each mutant is a context manager that changes one thing (one runtime internal monkeypatched, or
one ``init`` option) and yields extra ``init`` keyword arguments. The suite runs each against
the scenario and check it targets; the report shows the check failing, i.e. the mutant caught.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import power
from .monkeypatch import swapped
from .scenario import Scenario

#: How far the skewed-weights mutant moves the first weight (in probability).
SKEW = 0.02


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    #: The scenario it runs on and the check that must fail.
    scenario: str
    check: str
    patch: Callable[[], contextlib.AbstractContextManager[dict[str, Any]]]
    #: The size of the deviation for a statistical check (sizes the run by power analysis).
    delta: float | None = None
    #: The chance that one request shows the broken behaviour (sizes an exact check's run).
    exercised: Callable[[Scenario], float] | None = None
    #: Requests when neither applies (e.g. an outage window that every run crosses).
    n: int = 600
    #: Whether the catch is statistical (a test at alpha), not an exact comparison.
    statistical: bool = False

    def apply(self) -> contextlib.AbstractContextManager[dict[str, Any]]:
        return self.patch()

    def size(self, scenario: Scenario) -> int:
        """Requests for this mutant's run.

        Statistical: the power analysis for the mutant's own deviation. Exact: enough requests that
        the broken behaviour shows at least once with probability ``1 - MISS`` (at least
        ``MIN_N``), from the scenario's fault rates.
        """
        if self.delta is not None and scenario.weights is not None:
            return power.chi2_sample_size(scenario.weights, delta=self.delta)
        if self.exercised is not None:
            p = self.exercised(scenario)
            if 0 < p < 1:
                return max(MIN_N, math.ceil(math.log(MISS) / math.log1p(-p)))
            if p >= 1:
                return MIN_N
        return self.n


#: An exact check's mutant run misses the broken behaviour with at most this probability.
MISS = 1e-6
MIN_N = 100


def _first_transient(scenario: Scenario) -> float:
    """P(the first attempt of a request fails transiently): a retry (and a wait) follows."""
    key = scenario.first_key() or scenario.order[0]
    t, _ = scenario.providers[key].p_attempt(scenario.timeouts[key], scenario.retry_after_cap)
    return t


def _exhausts_first(scenario: Scenario) -> float:
    """P(a request's first model fails every allowed attempt transiently): an extra retry shows."""
    key = scenario.first_key() or scenario.order[0]
    t, _ = scenario.providers[key].p_attempt(scenario.timeouts[key], scenario.retry_after_cap)
    return float(t ** scenario.max_attempts[key])


def _ks_detects(scenario: Scenario) -> float:
    """Per request, the share of the draws the KS test needs to see ``sqrt(u)`` (D = 0.25).

    With ``m`` draws the test rejects at alpha = 0.001 once ``1.95 / sqrt(m)`` plus the DKW margin
    for 99% power, ``sqrt(ln(200) / (2 m))``, is below 0.25: ``m >= 205``. A request gives about
    ``P(first attempt fails transiently)`` draws; returned as the chance that makes ``size`` ask
    for that many requests.
    """
    m = math.ceil(((1.95 + math.sqrt(math.log(200) / 2)) / 0.25) ** 2)
    requests = m / max(_first_transient(scenario), 1e-9)
    # size() asks for ln(MISS) / ln(1 - p) requests: solve for p
    return -math.expm1(math.log(MISS) / requests)


@contextlib.contextmanager
def _weights_skewed() -> Iterator[dict[str, Any]]:
    """The selector draws with the first weight 2 points too high (the last 2 points too low)."""
    from notdiamond import _selection

    original = _selection.WeightedDraw.__init__

    def skewed(self: Any, order: tuple[str, ...], weights: tuple[float, ...], rng: Any) -> None:
        total = sum(weights)
        w = [x / total for x in weights]
        w[0] += SKEW
        w[-1] -= SKEW
        original(self, order, tuple(w), rng)

    with swapped(_selection.WeightedDraw, "__init__", skewed):
        yield {}


@contextlib.contextmanager
def _extra_retry() -> Iterator[dict[str, Any]]:
    """Every model gets one attempt more than configured."""
    from notdiamond import _manager, _policy

    original = _policy.build_policy

    def build(settings: Any, **kwargs: Any) -> Any:
        more = dataclasses.replace(settings, max_attempts=settings.max_attempts + 1)
        return original(more, **kwargs)

    # the manager builds one policy per model with the name it imported
    with swapped(_manager, "build_policy", build):
        yield {}


@contextlib.contextmanager
def _backoff_off() -> Iterator[dict[str, Any]]:
    """Every backoff wait is 10% longer than ``backoff ** k``."""
    from notdiamond import _policy

    original = _policy.wait_backoff_power.__call__

    def longer(self: Any, retry_state: Any) -> float:
        return float(original(self, retry_state)) * 1.10

    with swapped(_policy.wait_backoff_power, "__call__", longer):
        yield {}


@contextlib.contextmanager
def _jitter_skewed() -> Iterator[dict[str, Any]]:
    """The jitter draws ``sqrt(u)`` instead of ``u``: waits stay inside the bounds, but the jitter
    is no longer uniform (only the Kolmogorov-Smirnov test can see it)."""
    from notdiamond import _policy

    def skewed(self: Any, retry_state: Any) -> float:
        return float(self.base(retry_state)) * (
            1.0 - float(self.jitter) * math.sqrt(self.uniform())
        )

    with swapped(_policy.wait_jitter, "__call__", skewed):
        yield {}


@contextlib.contextmanager
def _sdk_retries_on() -> Iterator[dict[str, Any]]:
    """The SDK's own retries are left on (``sdk_retries=True``): they multiply every attempt."""
    yield {"sdk_retries": True}


@contextlib.contextmanager
def _order_ignored() -> Iterator[dict[str, Any]]:
    """A priority list falls back to the last model not yet failed instead of the next one."""
    from notdiamond import _selection

    def last_first(self: Any, failed: Any) -> str | None:
        for key in reversed(self.order):
            if key not in failed:
                return key  # type: ignore[no-any-return]
        return None

    with swapped(_selection.PriorityOrder, "next_model", last_first):
        yield {}


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant(
            "weights_skewed",
            f"weights skewed by {SKEW * 100:g} points (first model up, last down)",
            "healthy",
            "first_choice_weights",
            _weights_skewed,
            delta=SKEW,
            statistical=True,
        ),
        Mutant(
            "extra_retry",
            "one extra attempt per model",
            "flaky-5xx",
            "attempts_per_policy",
            _extra_retry,
            exercised=_exhausts_first,
        ),
        Mutant(
            "backoff_off",
            "backoff 10% too long",
            "flaky-5xx",
            "backoff_waits",
            _backoff_off,
            exercised=_first_transient,
        ),
        Mutant(
            "jitter_skewed",
            "jitter drawn as sqrt(u), not uniform (waits stay inside the bounds)",
            "jittered-backoff",
            "backoff_waits",
            _jitter_skewed,
            exercised=_ks_detects,
            statistical=True,
        ),
        Mutant(
            "sdk_retries_on",
            "the SDK's own retries left on",
            "flaky-5xx",
            "attempts_per_policy",
            _sdk_retries_on,
            exercised=_first_transient,
        ),
        Mutant(
            "order_ignored",
            "fallback ignores list order (takes the last model left)",
            "outage-primary",
            "fallback_order",
            _order_ignored,
        ),
    )
}
