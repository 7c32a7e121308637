"""How many requests a scenario runs: fixed in its file, or from the power analysis ("auto")."""

from __future__ import annotations

from . import power
from .scenario import Scenario


def auto_sizes(scenario: Scenario) -> dict[str, int]:
    """Requests each statistical check of the scenario needs (power analysis)."""
    from .checks.predict import predicted_success

    sizes: dict[str, int] = {}
    weighted_first = scenario.weights is not None and scenario.traffic.model == "notdiamond"
    if weighted_first and "first_choice_weights" in scenario.checks:
        assert scenario.weights is not None
        sizes["first_choice_weights"] = power.chi2_sample_size(scenario.weights)
    if "success_rate" in scenario.checks and scenario.stationary:
        sizes["success_rate"] = power.binomial_sample_size(predicted_success(scenario))
    return sizes


def sample_size(scenario: Scenario, quick: bool) -> int:
    """The scenario's request count: ``quick_n`` in quick runs, else its file's ``n``, or the
    largest size its statistical checks need."""
    if quick:
        return scenario.traffic.quick_n
    if scenario.traffic.n != "auto":
        return scenario.traffic.n
    return max(auto_sizes(scenario).values(), default=1000)
