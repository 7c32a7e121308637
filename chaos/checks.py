"""The seven checks. Each reads a run's traces and returns a :class:`CheckResult` with its
statistic, p-value (statistical checks) or exact comparison, ``n`` and seed.

The ground truth is what the fake providers saw (:class:`~chaos.trace.HttpRecord`): which model
was called when, and what it answered. The checks compare it with what the configuration promises
(``chaos/README.md`` states each rule), not with what the runtime says it did.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy import stats

from . import power
from .faults import TRANSIENT_KINDS
from .scenario import Scenario
from .trace import HttpRecord, Trace

#: Exact comparisons of waits hold to the millisecond of virtual time.
WAIT_TOLERANCE = 1e-3

#: The error class the SDK raises for each injected fault (for the conservation check).
SDK_ERROR = {
    "400": "BadRequestError",
    "401": "AuthenticationError",
    "408": "APIStatusError",
    "429": "RateLimitError",
    "500": "InternalServerError",
    "502": "InternalServerError",
    "503": "InternalServerError",
    "reset": "APIConnectionError",
    "read_timeout": "APITimeoutError",
}


@dataclass
class CheckResult:
    name: str
    scenario: str
    passed: bool
    statistic: float | None
    p_value: float | None
    n: int
    seed: int
    #: ``chi-square``, ``binomial`` or ``exact``.
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

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("statistic", "p_value"):
            v = out[key]
            if isinstance(v, float) and not math.isfinite(v):
                out[key] = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return out


# -- shared views of the trace ---------------------------------------------------------------
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


# -- the checks ------------------------------------------------------------------------------
class Checker:
    """Runs the checks of one scenario against one run's trace."""

    def __init__(
        self,
        scenario: Scenario,
        trace: Trace,
        seed: int,
        *,
        tolerance: tuple[float, float] | None = None,
    ) -> None:
        self.s = scenario
        self.trace = trace
        self.seed = seed
        self.http = trace.http_by_request()
        self.attempts = trace.attempts_by_request()
        self.endings = trace.endings_by_request()
        self.requests = list(range(trace.issued))
        #: (below, above) allowed deviation of a wait, in simulated seconds.
        self.tolerance = tolerance or (WAIT_TOLERANCE, WAIT_TOLERANCE)
        self.weights = (
            dict(zip(scenario.order, scenario.weights, strict=True)) if scenario.weights else None
        )

    def result(self, name: str, **kw: Any) -> CheckResult:
        return CheckResult(name=name, scenario=self.s.name, seed=self.seed, **kw)

    def exact_result(
        self,
        name: str,
        deviations: int,
        *,
        n: int,
        summary: str,
        details: dict[str, Any],
        exercised: bool = True,
    ) -> CheckResult:
        """An exact check: it passes with no deviation from its rule (and something to judge)."""
        return self.result(
            name,
            passed=deviations == 0 and exercised,
            statistic=float(deviations),
            p_value=None,
            n=n,
            method="exact",
            exercised=exercised,
            summary=summary,
            details=details,
        )

    def run(self, names: Sequence[str]) -> list[CheckResult]:
        out = []
        for name in names:
            fn = getattr(self, name)
            res = fn()
            if res is not None:
                out.append(res)
        return out

    # 1 ------------------------------------------------------------------------------------
    def first_choice_weights(self) -> CheckResult | None:
        if self.weights is None or self.s.traffic.model != "notdiamond":
            return None
        observed: Counter[str] = Counter(recs[0].key for recs in self.http.values() if recs)
        expected = normalised(self.weights)
        chi2, p, n = goodness_of_fit(observed, expected)
        required = power.chi2_sample_size(list(expected.values()))
        return self.result(
            "first_choice_weights",
            passed=n > 0 and p >= power.ALPHA,
            statistic=chi2,
            p_value=p,
            n=n,
            method="chi-square",
            required_n=required,
            exercised=n > 0,
            summary=f"first model of {n} requests vs weights: chi2={chi2:.2f}, p={p:.3g}",
            details={
                "table": weight_table(observed, expected),
                "df": len(expected) - 1,
                "alpha": power.ALPHA,
                "detectable_delta": power.detectable_delta(list(expected.values()), n)
                if n
                else None,
            },
        )

    # 2 ------------------------------------------------------------------------------------
    def fallback_draws(self) -> dict[frozenset[str], Counter[str]]:
        groups: dict[frozenset[str], Counter[str]] = defaultdict(Counter)
        for recs in self.http.values():
            bl = blocks(recs)
            for j in range(1, len(bl)):
                failed = frozenset(m for m, _ in bl[:j])
                groups[failed][bl[j][0]] += 1
        return groups

    def fallback_weights(self) -> CheckResult | None:
        if self.weights is None:
            return None
        groups = self.fallback_draws()
        total_stat, total_df, n = 0.0, 0, 0
        per_group: list[dict[str, Any]] = []
        worst_p = 1.0
        stray = 0
        for failed, counts in sorted(groups.items(), key=lambda kv: -sum(kv[1].values())):
            remaining = normalised({k: w for k, w in self.weights.items() if k not in failed})
            m = sum(counts.values())
            stray += sum(v for k, v in counts.items() if k not in remaining)
            if len(remaining) < 2 or min(remaining.values()) * m < 5:
                per_group.append({"failed": sorted(failed), "n": m, "used": False})
                continue
            chi2, p, _ = goodness_of_fit(counts, remaining)
            total_stat += chi2
            total_df += len(remaining) - 1
            n += m
            worst_p = min(worst_p, p)
            per_group.append(
                {
                    "failed": sorted(failed),
                    "n": m,
                    "used": True,
                    "chi2": chi2,
                    "p_value": p,
                    "table": weight_table(counts, remaining),
                }
            )
        if stray:
            p_all, total_stat = 0.0, math.inf
        elif total_df:
            p_all = float(stats.chi2.sf(total_stat, total_df))
        else:
            p_all = math.nan
        main = next((g for g in per_group if g.get("used")), None)
        required = None
        if main is not None:
            rem = normalised({k: w for k, w in self.weights.items() if k not in main["failed"]})
            required = power.chi2_sample_size(list(rem.values()))
        exercised = n > 0 or stray > 0
        return self.result(
            "fallback_weights",
            passed=exercised and stray == 0 and p_all >= power.ALPHA,
            statistic=total_stat if exercised else None,
            p_value=p_all if exercised else None,
            n=n,
            method="chi-square",
            required_n=required,
            exercised=exercised,
            summary=(
                f"{n} fallback draws in {sum(1 for g in per_group if g.get('used'))} group(s) vs the "
                f"remaining weights renormalised: chi2={total_stat:.2f} (df {total_df}), p={p_all:.3g}"
                + (f"; {stray} draws of models that could not be drawn" if stray else "")
            ),
            details={
                "groups": per_group,
                "df": total_df,
                "stray_draws": stray,
                "detectable_delta": (
                    power.detectable_delta(
                        list(
                            normalised(
                                {k: w for k, w in self.weights.items() if k not in main["failed"]}
                            ).values()
                        ),
                        main["n"],
                    )
                    if main is not None
                    else None
                ),
            },
        )

    # 3 ------------------------------------------------------------------------------------
    def expected_next(self, failed: Sequence[str]) -> str | None:
        for key in self.s.order:
            if key not in failed:
                return key
        return None

    def fallback_order(self) -> CheckResult | None:
        if self.weights is not None:
            return None
        first = self.s.first_key()
        violations = 0
        with_fallback = 0
        examples: list[dict[str, Any]] = []
        for r, recs in self.http.items():
            models = [m for m, _ in blocks(recs)]
            expected = [first]
            while len(expected) < len(models):
                nxt = self.expected_next(expected)  # type: ignore[arg-type]
                if nxt is None:
                    break
                expected.append(nxt)
            if len(models) > 1:
                with_fallback += 1
            if models != expected[: len(models)] or len(set(models)) != len(models):
                violations += 1
                if len(examples) < 5:
                    examples.append({"request": r, "models": models, "expected": expected})
        return self.exact_result(
            "fallback_order",
            violations,
            n=with_fallback,
            exercised=with_fallback > 0,
            summary=(
                f"{with_fallback} requests fell back; {violations} left list order "
                f"{list(self.s.order)} (failed models removed)"
            ),
            details={"violations": violations, "examples": examples, "requests": len(self.http)},
        )

    # 4 ------------------------------------------------------------------------------------
    def attempts_per_policy(self) -> CheckResult:
        cap = self.s.retry_after_cap
        max_attempts = self.s.max_attempts
        positive = [k for k in self.s.order if self.weights is None or self.weights[k] > 0]
        violations: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        block_lengths: dict[str, Counter[int]] = defaultdict(Counter)
        http_total = 0
        attempts_total = len(self.trace.attempts)

        def bad(kind: str, r: int, recs: Sequence[HttpRecord]) -> None:
            violations[kind] += 1
            if len(examples) < 8:
                examples.append(
                    {
                        "request": r,
                        "problem": kind,
                        "http": [(x.key, x.outcome, x.retry_after) for x in recs],
                    }
                )

        for r in self.requests:
            recs = self.http.get(r, [])
            http_total += len(recs)
            reported = len(self.attempts.get(r, []))
            if reported != len(recs):
                bad("http requests != attempts reported by the runtime", r, recs)
            if not recs:
                continue
            bl = blocks(recs)
            failed: list[str] = []
            for j, (model, group) in enumerate(bl):
                block_lengths[model][len(group)] += 1
                if model in failed:
                    bad("a failed model was tried again", r, recs)
                limit = max_attempts[model]
                problem = None
                for k, rec in enumerate(group, start=1):
                    retry = rec.outcome != "ok" and is_retryable(rec, cap) and k < limit
                    if k < len(group) and not retry:
                        problem = "more attempts than the policy allows"
                        break
                    if k == len(group) and retry:
                        problem = "fewer attempts than the policy allows"
                if problem is not None:
                    bad(problem, r, recs)
                    break
                last = group[-1]
                if last.outcome == "ok":
                    if j != len(bl) - 1:
                        bad("calls after a success", r, recs)
                    break
                failed.append(model)
                remaining = [k for k in positive if k not in failed]
                if j == len(bl) - 1 and remaining:
                    bad("no fallback although models were left", r, recs)
                if j < len(bl) - 1 and not remaining:
                    bad("calls after every model failed", r, recs)
        total = sum(violations.values())
        return self.exact_result(
            "attempts_per_policy",
            total,
            n=len(self.requests),
            summary=(
                f"{http_total} HTTP requests, {attempts_total} attempts reported, over "
                f"{len(self.requests)} requests; {total} deviations from max_retries="
                f"{dict(max_attempts)}"
            ),
            details={
                "violations": dict(violations),
                "examples": examples,
                "http_requests": http_total,
                "attempts_reported": attempts_total,
                "block_lengths": {m: dict(sorted(c.items())) for m, c in block_lengths.items()},
            },
        )

    # 5 ------------------------------------------------------------------------------------
    def wait_pairs(self) -> list[tuple[float, float, bool, str, float, float]]:
        """(expected, observed, governed by Retry-After, kind, low, high) for every gap between two
        attempts of a request. ``expected`` is the wait without jitter; with jitter ``j`` the
        runtime may shorten the backoff part to ``backoff ** k * (1 - j * u)``, so the wait lies
        in ``[low, high]``."""
        backoffs = self.s.backoffs
        jitter = self.s.jitter
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
                    out.append((expected, gap, ra > base * (1 - jitter), "retry", low, expected))
                else:
                    attempt = 0
                    out.append((0.0, gap, False, "fallback", 0.0, 0.0))
        return out

    def backoff_waits(self) -> CheckResult:
        pairs = self.wait_pairs()
        below, above = self.tolerance
        jitter = self.s.jitter
        bad = [(e, o) for e, o, _, _, lo, hi in pairs if o < lo - below or o > hi + above]
        worst = max((max(lo - o, o - hi, 0.0) for _, o, _, _, lo, hi in pairs), default=0.0)
        retry_after = sum(1 for p in pairs if p[2])
        retries = sum(1 for p in pairs if p[3] == "retry")
        rel = [o / e - 1 for e, o, _, k, _, _ in pairs if k == "retry" and e > 0]
        details: dict[str, Any] = {
            "outside_tolerance": len(bad),
            "examples": [{"expected": e, "observed": o} for e, o in bad[:8]],
            "retry_after_governed": retry_after,
            "tolerance_s": [below, above],
            "mean_relative_deviation": (sum(rel) / len(rel)) if rel else None,
        }
        statistic, p_value, method = worst, None, "exact"
        ks_note = ""
        passed = not bad and retries > 0
        if jitter > 0:
            # the jitter's draws, recovered from the waits Retry-After did not set: U[0, 1)
            u = [
                (1 - o / e) / jitter
                for e, o, governed, k, _, _ in pairs
                if k == "retry" and not governed and e > 0
            ]
            if len(u) >= 2:
                ks = stats.kstest(u, "uniform")
                statistic, p_value, method = float(ks.statistic), float(ks.pvalue), "KS + bounds"
                passed = passed and p_value >= power.ALPHA
                ks_note = f"; KS of the jitter draws vs U[0,1): D={statistic:.4f}, p={p_value:.3g}, n={len(u)}"
                details["ks_n"] = len(u)
            details["jitter"] = f"backoff ** k * (1 - {jitter:g} * u), u ~ U[0, 1)"
        else:
            details["jitter"] = "none configured: every wait is compared exactly"
        bounds = "inside the jitter bounds" if jitter > 0 else "exact"
        return self.result(
            "backoff_waits",
            passed=passed,
            statistic=statistic,
            p_value=p_value,
            n=len(pairs),
            method=method,
            exercised=retries > 0,
            summary=(
                f"{retries} waits before a retry ({retry_after} set by Retry-After) and "
                f"{len(pairs) - retries} fallbacks, {bounds}; largest deviation "
                f"{worst * 1000:.3f} ms; {len(bad)} outside [-{below * 1000:g}, +{above * 1000:g}] ms"
                + ks_note
            ),
            details=details,
        )

    # 6 ------------------------------------------------------------------------------------
    def success_rate(self) -> CheckResult | None:
        if not self.s.stationary:
            return None
        predicted = predicted_success(self.s)
        n = len(self.requests)
        ok = sum(
            1 for r in self.requests if any(e.kind == "response" for e in self.endings.get(r, []))
        )
        if predicted >= 1.0:
            p = 1.0 if ok == n else 0.0
            lo, hi = (ok / n if n else 1.0), 1.0
        elif predicted <= 0.0:
            p = 1.0 if ok == 0 else 0.0
            lo, hi = 0.0, 0.0
        else:
            test = stats.binomtest(ok, n, predicted)
            p = float(test.pvalue)
            ci = test.proportion_ci(confidence_level=1 - power.ALPHA)
            lo, hi = float(ci.low), float(ci.high)
        return self.result(
            "success_rate",
            passed=n > 0 and p >= power.ALPHA,
            statistic=ok / n if n else math.nan,
            p_value=p,
            n=n,
            method="binomial",
            required_n=power.binomial_sample_size(predicted),
            summary=(
                f"{ok}/{n} requests succeeded ({ok / max(n, 1):.4f}); predicted {predicted:.4f} "
                f"from the fault rates; binomial p={p:.3g}"
            ),
            details={"successes": ok, "predicted": predicted, "ci_99_9": [lo, hi]},
        )

    # 7 ------------------------------------------------------------------------------------
    def conservation(self) -> CheckResult:
        problems: Counter[str] = Counter()
        examples: list[dict[str, Any]] = []
        counts: Counter[str] = Counter()
        for r in self.requests:
            ends = self.endings.get(r, [])
            recs = self.http.get(r, [])
            atts = self.attempts.get(r, [])
            problem = None
            if len(ends) != 1:
                problem = f"{len(ends)} endings"
            else:
                end = ends[0]
                counts[end.kind] += 1
                last = recs[-1] if recs else None
                terminal = [a for a in atts if a.decision in ("success", "raise")]
                if len(terminal) != 1 or (atts and atts[-1] is not terminal[0]):
                    problem = "runtime reported no single final decision"
                elif len({a.call_id for a in atts}) != 1:
                    problem = "attempts of one request under several calls"
                elif end.kind == "response":
                    if last is None or last.outcome != "ok" or last.source == "cut":
                        problem = "response without a complete answer"
                    elif terminal[0].decision != "success":
                        problem = "response but the runtime decided to raise"
                elif end.kind == "stream_error":
                    if last is None or last.source != "cut":
                        problem = "stream broke without a cut"
                elif end.kind == "error":
                    if last is None or last.outcome == "ok":
                        problem = "error although the last answer was a success"
                    elif terminal[0].decision != "raise":
                        problem = "error but the runtime reported success"
                    elif end.error != SDK_ERROR.get(last.outcome) and not (
                        last.outcome == "408" and end.error == "APIStatusError"
                    ):
                        problem = f"raised {end.error}, expected {SDK_ERROR.get(last.outcome)}"
            if problem:
                problems[problem] += 1
                if len(examples) < 5:
                    examples.append({"request": r, "problem": problem})
        total = sum(problems.values())
        return self.exact_result(
            "conservation",
            total,
            n=len(self.requests),
            summary=(
                f"{len(self.requests)} requests: {counts.get('response', 0)} responses, "
                f"{counts.get('error', 0)} raised errors, {counts.get('stream_error', 0)} streams "
                f"broken mid-answer; {total} without exactly one ending"
            ),
            details={"endings": dict(counts), "problems": dict(problems), "examples": examples},
        )


def model_orderings(s: Scenario) -> list[tuple[float, tuple[str, ...]]]:
    """Every order in which a request may try the models, with its probability."""
    first = s.first_key()
    if s.weights is None:
        order = [first] if first is not None else []
        while len(order) < len(s.order):
            order.append(next(k for k in s.order if k not in order))
        return [(1.0, tuple(order))]
    weights = {k: w for k, w in zip(s.order, s.weights, strict=True) if w > 0}
    out = []
    keys = list(weights)
    start = [first] if first is not None else []
    rest_keys = [k for k in keys if k not in start]
    for perm in itertools.permutations(rest_keys):
        prob = 1.0
        left = dict((k, weights[k]) for k in rest_keys)
        for k in perm:
            prob *= left[k] / sum(left.values())
            del left[k]
        out.append((prob, (*start, *perm)))
    return out


def predicted_success(s: Scenario) -> float:
    """P(a request gets a complete answer), from the fault rates and the policy.

    Per model: ``P(success) = (1 - t - q) * sum(t**k for k < max_attempts)`` with ``t`` the chance
    of a transient failure (timeouts from the latency distribution included) and ``q`` that of one
    that leaves the model; a streamed answer must also not be cut. Over models: every order the
    selection can take, weighted by its probability (independent faults).
    """
    cap = s.retry_after_cap
    succ: dict[str, float] = {}
    complete: dict[str, float] = {}
    for key in s.order:
        f = s.providers[key]
        t, q = f.p_attempt(s.timeouts[key], cap)
        a = s.max_attempts[key]
        succ[key] = (1 - t - q) * sum(t**k for k in range(a))
        cut = f.stream_cut.probability if f.stream_cut is not None else 0.0
        complete[key] = 1 - s.traffic.stream * cut
    total = 0.0
    for prob, order in model_orderings(s):
        reach = 1.0
        p = 0.0
        for key in order:
            p += reach * succ[key] * complete[key]
            reach *= 1 - succ[key]
        total += prob * p
    return total
