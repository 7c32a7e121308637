"""Checks on the runtime's own selector, at the power analysis's full size (``path: selector``).

The draws the SDK path makes come from the same object (``RetryManager``'s selector, through the
route for the first choice and ``get_next_model`` for fallbacks); called directly, 90 thousand
draws take well under a second instead of minutes of SDK overhead.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

from .. import power
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView
from .stats import goodness_of_fit, normalised, weight_table


def plain_clients(providers: set[str], url: str, *, api_key: str) -> list[Any]:
    """Sync SDK clients on their own HTTP stack, one per provider (sorted), all aimed at ``url``."""
    import openai

    clients: list[Any] = []
    for provider in sorted(providers):
        if provider == "azure":
            clients.append(
                openai.AzureOpenAI(api_key=api_key, api_version="2024-10-21", azure_endpoint=url)
            )
        else:
            clients.append(openai.OpenAI(api_key=api_key, base_url=url + "/v1"))
    return clients


@contextlib.contextmanager
def selector_manager(view: RunView, seed: int) -> Iterator[Any]:
    """A manager of the scenario's configuration (and the mutant's extra options), never called."""
    import notdiamond

    s = view.scenario
    clients = plain_clients(s.provider_set(), "http://x.invalid", api_key="x")
    with notdiamond.init(clients, **s.init_kwargs(), seed=seed, **view.extra_init) as manager:
        yield manager


def selector_seed(view: RunView) -> int:
    from ..jobs import derive_seed

    return derive_seed(view.seed, "selector")


def chi2_of_draws(
    draw: Callable[[], str], expected: dict[str, float]
) -> tuple[dict[str, int], float, float, int, int]:
    """Draw as often as the power analysis asks: (counts, chi2, p, n, required)."""
    required = power.chi2_sample_size(list(expected.values()))
    counts: dict[str, int] = {}
    for _ in range(required):
        k = draw()
        counts[k] = counts.get(k, 0) + 1
    chi2, p, n = goodness_of_fit(counts, expected)
    return counts, chi2, p, n, required


@register
class SelectorFirstChoice(Check):
    name = "first_choice_weights"
    path = "selector"
    description = (
        "the runtime's selector's first choices at the full power-analysis size (the call "
        '`model="notdiamond"` makes): chi-square'
    )
    needs = frozenset({"selector"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.weights is not None and scenario.selector_draws

    def run(self, view: RunView) -> CheckResult:
        assert view.weights is not None
        expected = normalised(view.weights)
        seed = selector_seed(view)
        with selector_manager(view, seed) as manager:
            counts, chi2, p, n, required = chi2_of_draws(manager._selector.first, expected)
        return self.result(
            view,
            passed=p >= power.ALPHA,
            statistic=chi2,
            p_value=p,
            n=n,
            method="chi-square",
            required_n=required,
            summary=f"{n} first choices drawn by the runtime's selector: chi2={chi2:.2f}, p={p:.3g}",
            details={"table": weight_table(counts, expected), "df": len(expected) - 1},
        )


def failure_sets(weights: dict[str, float]) -> list[frozenset[str]]:
    """Every set of failed models (of positive weight) that leaves at least two to draw from."""
    positive = [k for k, w in weights.items() if w > 0]
    out = []
    for size in range(1, len(positive) - 1):
        out += [frozenset(c) for c in itertools.combinations(positive, size)]
    return out


@register
class SelectorFallback(Check):
    name = "fallback_weights"
    path = "selector"
    description = (
        "`get_next_model(failed)` after every possible set of failed models, each at the full "
        "power-analysis size: chi-squares against the remaining weights renormalised (summed)"
    )
    needs = frozenset({"selector"})

    def applies(self, scenario: Scenario) -> bool:
        if scenario.weights is None or not scenario.selector_draws:
            return False
        return bool(failure_sets(dict(zip(scenario.order, scenario.weights, strict=True))))

    def run(self, view: RunView) -> CheckResult:
        from scipy import stats

        assert view.weights is not None
        seed = selector_seed(view)
        groups: list[dict[str, Any]] = []
        total, df, n_all = 0.0, 0, 0
        with selector_manager(view, seed) as manager:
            for failed in failure_sets(view.weights):
                rest = normalised({k: w for k, w in view.weights.items() if k not in failed})
                failed_list = sorted(failed)

                def draw(failed_list: list[str] = failed_list) -> str:
                    key = manager.get_next_model(failed_list)
                    assert key is not None
                    return str(key)

                counts, chi2, p, n, _ = chi2_of_draws(draw, rest)
                total += chi2
                df += len(rest) - 1
                n_all += n
                groups.append(
                    {
                        "failed": failed_list,
                        "n": n,
                        "used": True,
                        "chi2": chi2,
                        "p_value": p,
                        "table": weight_table(counts, rest),
                    }
                )
        p_all = float(stats.chi2.sf(total, df)) if df else 0.0
        worst = min(groups, key=lambda g: g["p_value"])
        return self.result(
            view,
            passed=p_all >= power.ALPHA,
            statistic=total,
            p_value=p_all,
            n=n_all,
            method="chi-square",
            required_n=max(g["n"] for g in groups),
            summary=(
                f"{n_all} fallback draws by get_next_model after {len(groups)} different sets of "
                f"failed models: chi2={total:.2f} (df {df}), p={p_all:.3g}; least likely group: "
                f"after {', '.join(worst['failed'])} failed, p={worst['p_value']:.3g}"
            ),
            details={"groups": groups, "df": df, "failed": worst["failed"]},
        )


#: Selections compared by the reproducibility check.
REPRODUCE_DRAWS = 2000


@register
class ReproducibleSelection(Check):
    name = "reproducible_selection"
    path = "selector"
    description = (
        "two managers with the same seed= make the same first choices and fallbacks, although "
        "the global random and numpy generators are drawn from between every call of one (exact)"
    )
    needs = frozenset({"selector"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.weights is not None

    def run(self, view: RunView) -> CheckResult:
        import numpy as np

        assert view.weights is not None
        seed = selector_seed(view)
        failing = failure_sets(view.weights) or [frozenset()]

        def sequence(noise: Callable[[int], None]) -> list[str | None]:
            out: list[str | None] = []
            with selector_manager(view, seed) as manager:
                for i in range(REPRODUCE_DRAWS):
                    noise(i)
                    out.append(manager._selector.first())
                    noise(i)
                    out.append(manager.get_next_model(sorted(failing[i % len(failing)])))
            return out

        def quiet(i: int) -> None:
            return None

        state = random.getstate()
        np_state = np.random.get_state()
        try:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            clean = sequence(quiet)

            def noisy(i: int) -> None:
                random.random()
                if i % 3 == 0:
                    random.getrandbits(64)
                np.random.random()

            noisy_run = sequence(noisy)
        finally:
            random.setstate(state)
            np.random.set_state(np_state)
        differ = sum(1 for a, b in zip(clean, noisy_run, strict=True) if a != b)
        first_diff = next(
            (i for i, (a, b) in enumerate(zip(clean, noisy_run, strict=True)) if a != b), None
        )
        return self.exact(
            view,
            differ,
            events=len(clean),
            n=len(clean),
            summary=(
                f"{len(clean)} selections (first choices and fallbacks) with seed={seed}, once "
                f"alone and once between draws from the global random and numpy: {differ} differ"
            ),
            details={"first_difference": first_diff},
        )
