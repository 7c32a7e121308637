"""The chaos harness proves the health strategies (issue 12 section 5): the breaker, deadline and
retry-budget scenarios pass their checks at small n, each check is exercised, scenario files
configure the strategies through the runtime's own validation, and the observer takes transitions.

(The six health mutants run, like every mutant, in ``tests/test_chaos_suite.py``'s reduced run.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("scipy")

import notdiamond
from chaos.__main__ import main
from chaos.mutants import MUTANTS
from chaos.scenario import ScenarioError, load_builtin, parse
from chaos.trace import Trace

HEALTH_SCENARIOS = {
    "breaker-outage": {"breaker_reference", "conservation"},
    "breaker-outage-async": {"breaker_reference", "conservation"},
    "breaker-weights-async": {"breaker_reference", "open_weights", "conservation"},
    "deadline-slow": {"deadline"},
    "deadline-slow-async": {"deadline"},
    "retry-storm-budget": {"retry_budget", "conservation"},
    "retry-storm": {"attempts_per_policy", "backoff_waits", "conservation"},
}
HEALTH_MUTANTS = {
    "breaker_never_opens": "breaker_reference",
    "breaker_opens_one_late": "breaker_reference",
    "half_open_lets_all_through": "breaker_reference",
    "break_not_doubled": "breaker_reference",
    "deadline_ignored_on_last_attempt": "deadline",
    "budget_not_enforced": "retry_budget",
}


@pytest.fixture(scope="module")
def health_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    out = tmp_path_factory.mktemp("chaos-health")
    args = ["--quick", "--seed", "11", "--out", str(out), "--no-plots", "--no-mutants"]
    for name in HEALTH_SCENARIOS:
        args += ["--scenario", name]
    code = main([*args, "--workers", "2"])
    return code, json.loads((out / "results.json").read_text())


def test_health_scenarios_pass_and_exercise_their_checks(
    health_run: tuple[int, dict[str, Any]],
) -> None:
    code, data = health_run
    failed = [(c["scenario"], c["name"], c["summary"]) for c in data["checks"] if not c["passed"]]
    assert failed == []
    assert code == 0
    for scenario, names in HEALTH_SCENARIOS.items():
        ran = {c["name"] for c in data["checks"] if c["scenario"] == scenario}
        assert ran == names, scenario
    for check in data["checks"]:
        assert check["exercised"], (check["scenario"], check["name"])


def test_the_breaker_opened_probed_and_closed(health_run: tuple[int, dict[str, Any]]) -> None:
    _, data = health_run
    outage = next(
        c
        for c in data["checks"]
        if c["scenario"] == "breaker-outage" and c["name"] == "breaker_reference"
    )
    decisions = outage["details"]["decisions"]
    assert decisions["skip"] > 0
    assert decisions["probe"] > 0
    assert decisions["last_resort"] > 0
    assert outage["details"]["disagreements"] == []


def test_the_budget_bounds_the_storm(health_run: tuple[int, dict[str, Any]]) -> None:
    _, data = health_run
    budget = next(c for c in data["checks"] if c["name"] == "retry_budget")
    per_call = budget["details"]["per_model"]["openai/gpt-4o"]["requests_per_call"]
    assert per_call < 1.5  # without the budget (retry-storm) about 4 requests per call


def test_each_health_mutant_targets_its_check() -> None:
    for name, check in HEALTH_MUTANTS.items():
        assert MUTANTS[name].check == check


def _scenario(config_extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "config": {"models": ["openai/gpt-4o", "azure/gpt-4o"], **config_extra},
        "providers": {"openai/gpt-4o": {}, "azure/gpt-4o": {}},
        "checks": ["conservation"],
    }


def test_scenario_configures_the_health_options() -> None:
    s = parse(
        _scenario(
            {
                "circuit_breaker": {"consecutive_failures": 3, "break_duration": 5},
                "retry_budget": True,
                "deadline": 4,
            }
        ),
        name="t",
    )
    kwargs = s.init_kwargs()
    assert kwargs["circuit_breaker"] == notdiamond.CircuitBreaker(
        consecutive_failures=3, break_duration=5
    )
    assert kwargs["retry_budget"] is True
    assert kwargs["deadline"] == 4


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"circuit_breaker": {"consecutive_failures": 0}}, "consecutive_failures"),
        ({"circuit_breaker": {"break_duration": 60, "max_break_duration": 10}}, "max_break"),
        ({"circuit_breaker": {"consecutive": 3}}, "notdiamond.CircuitBreaker"),
        ({"retry_budget": {"ratio": -1}}, "ratio"),
        ({"retry_budget": "yes"}, "retry_budget"),
        ({"deadline": 0}, "deadline"),
    ],
)
def test_scenario_refuses_bad_health_options(extra: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ScenarioError, match=fragment):
        parse(_scenario(extra), name="t", source="bad.json")


def test_observer_takes_attempts_and_transitions() -> None:
    trace = Trace()
    change = notdiamond.BreakerTransition(
        "openai/gpt-4o", "closed", "open", 1.0, "consecutive_failures", until=31.0
    )
    trace.observer(change)
    assert trace.transitions == [change]
    assert trace.attempts == []


def test_breaker_outage_async_reports_one_final_decision_per_call() -> None:
    from chaos.jobs import Job, execute

    scenario = load_builtin(["breaker-outage-async"])[0]
    result = execute(Job(scenario, 1500, 11, checks=("conservation",)), show_progress=False)
    assert result.error is None
    assert [c.name for c in result.checks] == ["conservation"]
    assert result.checks[0].passed, result.checks[0].details["problems"]
