"""Deliberately broken runtimes: the checks must catch every one of them.

Each mutant is a context manager that changes one thing (one runtime internal monkeypatched, or
one ``init`` option) and yields extra ``init`` keyword arguments. The suite runs each against
the scenario and check it targets; the report shows the check failing, i.e. the mutant caught.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import power
from .monkeypatch import swapped
from .results import CheckResult
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
    #: Requests for the run, computed from the scenario (overrides the rules above).
    sizer: Callable[[Scenario], int] | None = None

    def apply(self) -> contextlib.AbstractContextManager[dict[str, Any]]:
        return self.patch()

    def size(self, scenario: Scenario) -> int:
        """Requests for this mutant's run.

        Statistical: the power analysis for the mutant's own deviation. Exact: enough requests that
        the broken behaviour shows at least once with probability ``1 - MISS`` (at least
        ``MIN_N``), from the scenario's fault rates.
        """
        if self.sizer is not None:
            return self.sizer(scenario)
        if self.delta is not None and scenario.weights is not None:
            return power.chi2_sample_size(scenario.weights, delta=self.delta)
        if self.exercised is not None:
            p = self.exercised(scenario)
            if 0 < p < 1:
                return max(MIN_N, math.ceil(math.log(MISS) / math.log1p(-p)))
            if p >= 1:
                return MIN_N
        return self.n


def caught(mutant: str, checks: Sequence[CheckResult]) -> bool:
    """Whether a mutant's run caught it: its target check ran and failed."""
    target = [c for c in checks if c.name == MUTANTS[mutant].check]
    return bool(target) and any(not c.passed for c in target)


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


# -- the blind spots of issue 8 ----------------------------------------------------------------
# Seams, chosen to survive refactors of the runtime: the wrapper classes exported by
# ``notdiamond.toolkit._retry`` and their ``_default_create`` (SPEC 5: called once per attempt with
# exactly that attempt's keyword arguments), ``notdiamond._policy``'s module functions (read when
# a policy is built or consulted), ``notdiamond._call.attach_failures``, and the selector classes
# of ``notdiamond._selection``. The request an attempt belongs to comes from the harness's own
# context variable (``chaos.trace.current_request``), never from runtime internals.


def _wrapper_classes() -> tuple[Any, ...]:
    from notdiamond.toolkit import _retry

    return (_retry.RetryWrapper, _retry.AsyncRetryWrapper)


@contextlib.contextmanager
def _attempts_rewritten(
    rewrite: Callable[
        [tuple[str, str] | None, tuple[str, str], tuple[str, str], dict[str, Any]], None
    ],
) -> Iterator[dict[str, Any]]:
    """Every attempt's ``create`` arguments pass through ``rewrite(first, previous, this,
    kwargs)`` first: ``first``/``previous`` are the (provider, model) of the request's first and
    previous attempt (None for the first attempt)."""
    from .trace import current_request

    sync_cls, async_cls = _wrapper_classes()
    base = sync_cls.__mro__[1]
    original = base._default_create
    first: dict[int, tuple[str, str]] = {}
    previous: dict[int, tuple[str, str]] = {}

    def mutated(self: Any, **kwargs: Any) -> Any:
        request = current_request.get()
        this = (str(self.provider), str(kwargs.get("model")))
        first.setdefault(request, this)
        rewrite(previous.get(request), first[request], this, kwargs)
        previous[request] = this
        return original(self, **kwargs)

    with (
        swapped(sync_cls, "_default_create", mutated),
        swapped(async_cls, "_default_create", mutated),
    ):
        yield {}


def _timeout_on_retries() -> contextlib.AbstractContextManager[dict[str, Any]]:
    """Retries of the same model are sent with 1.5 times the model's timeout."""

    def rewrite(
        previous: tuple[str, str] | None,
        first: tuple[str, str],
        this: tuple[str, str],
        kwargs: dict[str, Any],
    ) -> None:
        if previous == this:
            kwargs["timeout"] = kwargs["timeout"] * 1.5

    return _attempts_rewritten(rewrite)


def _messages_dropped_after_fallback() -> contextlib.AbstractContextManager[dict[str, Any]]:
    """Attempts after a fallback send only the caller's messages (model_messages dropped)."""
    from .trace import CALLER_MESSAGES

    def rewrite(
        previous: tuple[str, str] | None,
        first: tuple[str, str],
        this: tuple[str, str],
        kwargs: dict[str, Any],
    ) -> None:
        if this != first:
            kwargs["messages"] = list(kwargs["messages"])[-len(CALLER_MESSAGES) :]

    return _attempts_rewritten(rewrite)


@contextlib.contextmanager
def _permanent_error_returns_none() -> Iterator[dict[str, Any]]:
    """A permanent error (400/401/403/404/422) ends the call with ``None`` instead of falling
    back or raising: the caller receives no response and no error."""
    import openai

    from notdiamond import _policy

    sync_cls, _ = _wrapper_classes()
    original = sync_cls.__mro__[1]._default_create

    def mutated(self: Any, **kwargs: Any) -> Any:
        try:
            return original(self, **kwargs)
        except openai.APIStatusError as exc:
            if _policy.is_transient(exc):
                raise
            return None

    with swapped(sync_cls, "_default_create", mutated):
        yield {}


@contextlib.contextmanager
def _final_error_first() -> Iterator[dict[str, Any]]:
    """The caller receives the call's first failure, not its last (failures still attached)."""
    from notdiamond import _call

    original = _call.attach_failures

    def first_instead(error: Exception, failures: list[Any]) -> Exception:
        return original(failures[0][2] if failures else error, failures)

    with swapped(_call, "attach_failures", first_instead):
        yield {}


@contextlib.contextmanager
def _failures_not_attached() -> Iterator[dict[str, Any]]:
    """The last error is raised bare: no ``notdiamond_failures``, no note."""
    from notdiamond import _call

    def bare(error: Exception, failures: list[Any]) -> Exception:
        return error

    with swapped(_call, "attach_failures", bare):
        yield {}


@contextlib.contextmanager
def _uniform_fallback() -> Iterator[dict[str, Any]]:
    """Fallbacks draw uniformly among the models left (positive weight, not failed)."""
    from notdiamond import _selection

    def uniform(self: Any, failed: Any) -> str | None:
        remaining = [k for k in self.keys if k not in failed]
        if not remaining:
            return None
        with self._lock:
            u = self._rng.random()
        return str(remaining[min(int(u * len(remaining)), len(remaining) - 1)])

    with swapped(_selection.WeightedDraw, "next_model", uniform):
        yield {}


@contextlib.contextmanager
def _conflict_permanent() -> Iterator[dict[str, Any]]:
    """409 Conflict is treated as permanent: the model is left at once instead of retried."""
    import openai

    from notdiamond import _policy

    original = _policy.is_transient

    def no_409(exc: BaseException) -> bool:
        if isinstance(exc, openai.APIStatusError) and exc.status_code == 409:
            return False
        return original(exc)

    with swapped(_policy, "is_transient", no_409):
        yield {}


@contextlib.contextmanager
def _http_date_ignored() -> Iterator[dict[str, Any]]:
    """A ``Retry-After`` given as an HTTP date is ignored (only seconds and ms are read)."""
    import openai

    from notdiamond import _policy

    original = _policy.retry_after_seconds

    def seconds_only(exc: BaseException | None, *, now: float | None = None) -> float | None:
        if isinstance(exc, openai.APIStatusError) and "retry-after-ms" not in exc.response.headers:
            raw = exc.response.headers.get("retry-after")
            if raw is not None:
                try:
                    float(raw)
                except ValueError:
                    return None
        return original(exc, now=now)

    with swapped(_policy, "retry_after_seconds", seconds_only):
        yield {}


@contextlib.contextmanager
def _seed_ignored() -> Iterator[dict[str, Any]]:
    """The selector draws from the process-wide ``random`` generator, not the seeded one."""
    from notdiamond import _selection

    original = _selection.WeightedDraw.__init__

    def global_rng(self: Any, order: tuple[str, ...], weights: tuple[float, ...], rng: Any) -> None:
        original(self, order, weights, random._inst)

    with swapped(_selection.WeightedDraw, "__init__", global_rng):
        yield {}


# -- how often each mutant's broken behaviour shows, per request (sizes its run) ---------------
def _p_first_on(scenario: Scenario) -> dict[str, float]:
    """P(a request's first attempt is on each model)."""
    from .checks.predict import model_orderings

    out: dict[str, float] = {}
    for prob, order in model_orderings(scenario):
        out[order[0]] = out.get(order[0], 0.0) + prob
    return out


def _any_retry(scenario: Scenario) -> float:
    """P(the first attempt fails transiently and the model has another attempt)."""
    total = 0.0
    for key, p in _p_first_on(scenario).items():
        t, _ = scenario.providers[key].p_attempt(scenario.timeouts[key], scenario.retry_after_cap)
        total += p * t * (scenario.max_attempts[key] > 1)
    return total


def _falls_back_to_messages(scenario: Scenario) -> float:
    """P(the first model fails and the next one has model_messages): dropping them shows."""
    from .checks.predict import model_orderings, model_success

    succ = model_success(scenario)
    total = 0.0
    for prob, order in model_orderings(scenario):
        if len(order) > 1 and scenario.messages[order[1]]:
            total += prob * (1 - succ[order[0]])
    return total


def _all_fail(scenario: Scenario) -> float:
    from .checks.predict import predicted_all_fail

    return predicted_all_fail(scenario)


def _first_permanent(scenario: Scenario) -> float:
    """P(the first attempt fails with a permanent status)."""
    from .faults import PERMANENT_KINDS

    total = 0.0
    for key, p in _p_first_on(scenario).items():
        f = scenario.providers[key]
        served = f.latency.cdf(scenario.timeouts[key])
        total += p * served * sum(v for k, v in f.errors.items() if k in PERMANENT_KINDS)
    return total


def _first_conflict(scenario: Scenario) -> float:
    """P(the first attempt is a 409 on a model with another attempt left)."""
    total = 0.0
    for key, p in _p_first_on(scenario).items():
        f = scenario.providers[key]
        if scenario.max_attempts[key] > 1:
            total += p * f.latency.cdf(scenario.timeouts[key]) * f.errors.get("409", 0.0)
    return total


def _first_dated_wait(scenario: Scenario) -> float:
    """P(the first attempt asks, by HTTP date, for a wait longer than its backoff by > 1 s)."""
    from .faults import HTTP_DATE_SLACK

    total = 0.0
    for key, p in _p_first_on(scenario).items():
        f = scenario.providers[key]
        ra = f.retry_after
        if ra.header != "http-date" or scenario.max_attempts[key] < 2:
            continue
        served = f.latency.cdf(scenario.timeouts[key])
        dated = sum(v for k, v in f.errors.items() if k in ra.on)
        longer = 1.0 - ra.wait.cdf(scenario.backoffs[key] + HTTP_DATE_SLACK + 0.01)
        total += p * served * dated * longer
    return total


#: Power the uniform-fallback mutant's run is sized for: above the suite's 0.99, because its
#: groups hold only a few hundred draws each, where the non-central chi-square is a little
#: optimistic (on high-failure, a simulation of the grouped test gives 0.990 at the 0.99 size,
#: 1,037 requests, and 0.999 at this size).
UNIFORM_FALLBACK_POWER = 0.999


def _uniform_fallback_size(scenario: Scenario) -> int:
    """Requests for the chi-square of the fallback draws to see uniform draws instead of
    weighted ones with power :data:`UNIFORM_FALLBACK_POWER` at alpha = 0.001: each group of
    failed models that leaves two or more to draw from adds ``P(group) * w2(uniform vs
    renormalised weights)`` to the non-centrality per request, and one degree of freedom less
    than it has models left."""
    from scipy import stats

    from .checks.predict import model_orderings, model_success

    assert scenario.weights is not None
    weights = {k: w for k, w in zip(scenario.order, scenario.weights, strict=True) if w > 0}
    succ = model_success(scenario)
    per_request, df = 0.0, 0
    groups: dict[frozenset[str], float] = {}
    for prob, order in model_orderings(scenario):
        reach = prob
        for j in range(len(order) - 1):
            reach *= 1 - succ[order[j]]
            failed = frozenset(order[: j + 1])
            if len(weights) - len(failed) >= 2:
                groups[failed] = groups.get(failed, 0.0) + reach
    for failed, p_group in groups.items():
        rest = {k: w for k, w in weights.items() if k not in failed}
        total = sum(rest.values())
        u = 1.0 / len(rest)
        w2 = sum((u - w / total) ** 2 / (w / total) for w in rest.values())
        per_request += p_group * w2
        df += len(rest) - 1
    if per_request <= 0:
        return MIN_N
    crit = stats.chi2.isf(power.ALPHA, df)
    n = MIN_N
    while stats.ncx2.sf(crit, df, n * per_request) < UNIFORM_FALLBACK_POWER:
        n = math.ceil(n * 1.1)
    return n


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
        Mutant(
            "timeout_on_retries",
            "retries of the same model sent with 1.5 times its timeout",
            "per-model-policies",
            "attempt_fields",
            _timeout_on_retries,
            exercised=_any_retry,
        ),
        Mutant(
            "messages_dropped_after_fallback",
            "model_messages dropped on attempts after a fallback",
            "per-model-policies",
            "attempt_fields",
            _messages_dropped_after_fallback,
            exercised=_falls_back_to_messages,
        ),
        Mutant(
            "permanent_error_returns_none",
            "a permanent error (400/401/403/404/422) returns None to the caller",
            "high-failure",
            "conservation",
            _permanent_error_returns_none,
            exercised=_first_permanent,
        ),
        Mutant(
            "final_error_first",
            "the caller receives the call's first failure, not its last",
            "high-failure",
            "final_error",
            _final_error_first,
            exercised=_all_fail,
        ),
        Mutant(
            "failures_not_attached",
            "the last error raised bare: no notdiamond_failures, no note",
            "high-failure",
            "final_error",
            _failures_not_attached,
            exercised=_all_fail,
        ),
        Mutant(
            "uniform_fallback",
            "fallbacks drawn uniformly among the models left, not by weight",
            "high-failure",
            "fallback_weights",
            _uniform_fallback,
            statistical=True,
            sizer=_uniform_fallback_size,
        ),
        Mutant(
            "conflict_permanent",
            "409 Conflict treated as permanent (left at once, not retried)",
            "per-model-policies",
            "attempts_per_policy",
            _conflict_permanent,
            exercised=_first_conflict,
        ),
        Mutant(
            "http_date_ignored",
            "Retry-After given as an HTTP date ignored",
            "per-model-policies",
            "backoff_waits",
            _http_date_ignored,
            exercised=_first_dated_wait,
        ),
        Mutant(
            "seed_ignored",
            "selection draws from the global random generator, not the seeded one",
            "high-failure",
            "reproducible_selection",
            _seed_ignored,
            n=0,  # its check draws from the selector: the job sends no traffic
        ),
    )
}

# the stream mutants (SPEC 4.9), the hedging ones and the health strategies' ones (issue 12
# section 5) live in their own modules
from .fleet_mutants import fleet_mutants  # noqa: E402
from .hedge_mutants import hedge_mutants  # noqa: E402
from .mutants_health import health_mutants  # noqa: E402
from .stream_mutants import stream_mutants  # noqa: E402

MUTANTS.update(
    {m.name: m for m in (*stream_mutants(), *hedge_mutants(), *health_mutants(), *fleet_mutants())}
)
