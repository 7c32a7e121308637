"""Scenario files: validation errors name the file, the field and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos.power import binomial_sample_size, chi2_power, chi2_sample_size, least_effect
from chaos.scenario import ScenarioError, load, load_builtin, parse


def base() -> dict[str, Any]:
    return {
        "config": {"models": ["openai/gpt-4o", "azure/gpt-4o"], "max_retries": 2},
        "providers": {"openai/gpt-4o": {"errors": {"500": 0.1}}, "azure/gpt-4o": {}},
        "traffic": {"n": 100},
    }


def test_every_builtin_scenario_loads() -> None:
    scenarios = load_builtin()
    assert len(scenarios) >= 8
    assert {s.mode for s in scenarios} == {"sync", "async", "server", "fleet"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(colour="red"), "unknown field(s) ['colour']"),
        (lambda d: d["providers"].pop("azure/gpt-4o"), "no fault model for ['azure/gpt-4o']"),
        (lambda d: d["providers"].update({"openai/other": {}}), "not among config.models"),
        (
            lambda d: d["providers"]["openai/gpt-4o"]["errors"].update({"503": 0.95}),
            "add up to 1.05 > 1",
        ),
        (
            lambda d: d["providers"]["openai/gpt-4o"]["errors"].update({"418": 0.1}),
            "'418' is not a fault",
        ),
        (
            lambda d: d["providers"]["openai/gpt-4o"].update(latency={"kind": "gamma"}),
            "is not a distribution",
        ),
        (
            lambda d: d["providers"]["openai/gpt-4o"].update(
                latency={"kind": "uniform", "low": 2, "high": 1}
            ),
            "low <= high",
        ),
        (
            lambda d: d["providers"]["openai/gpt-4o"].update(outages=[{"start": 5, "end": 1}]),
            "end (1.0) must be after start (5.0)",
        ),
        (
            lambda d: d["providers"]["openai/gpt-4o"].update(rate_limit={"rate": 0, "burst": 2}),
            "must be > 0",
        ),
        (
            lambda d: d["providers"]["openai/gpt-4o"].update(retry_after={"header": "x-wait"}),
            "'retry-after-ms'",
        ),
        (lambda d: d["config"].update(max_retries=0), "would never call the model"),
        (lambda d: d["config"].update(jitter=1.5), "config: jitter is the largest fraction"),
        (lambda d: d["config"].update(models=["gpt-4o"]), "full form '<provider>/<model>'"),
        (lambda d: d.update(checks=["vibes"]), "['vibes'] unknown"),
        (lambda d: d.update(mode="threads"), "use 'sync', 'async' or 'server'"),
        (lambda d: d["traffic"].update(n=0), "traffic.n"),
        (
            lambda d: d["traffic"].update(model="openai/nope"),
            "neither 'notdiamond' nor a configured model",
        ),
    ],
)
def test_validation_errors_name_the_fix(change: Any, message: str) -> None:
    data = base()
    change(data)
    with pytest.raises(ScenarioError) as info:
        parse(data, name="t", source="bad.json")
    assert message in str(info.value)
    assert str(info.value).startswith("bad.json: ")


def test_files_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(base()))
    assert load(tmp_path / "a.json").name == "a"
    (tmp_path / "b.toml").write_text(
        'mode = "sync"\n[config]\nmodels = ["openai/gpt-4o"]\n'
        '[providers."openai/gpt-4o"]\nlatency = 0.2\n[providers."openai/gpt-4o".errors]\n"503" = 0.1\n'
    )
    s = load(tmp_path / "b.toml")
    assert s.providers["openai/gpt-4o"].errors == {"503": 0.1}
    (tmp_path / "c.json").write_text("{ nope")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load(tmp_path / "c.json")
    with pytest.raises(ScenarioError, match=r"cannot read the file"):
        load(tmp_path / "missing.json")


def test_power_analysis_sizes() -> None:
    # the figures: about 30k draws for 0.9/0.1 and 90k for 0.5/0.25/0.25
    n2 = chi2_sample_size([0.9, 0.1])
    n3 = chi2_sample_size([0.5, 0.25, 0.25])
    assert 27_000 < n2 < 30_000
    assert 85_000 < n3 < 93_000
    assert chi2_power(n3, least_effect([0.5, 0.25, 0.25]), 2) >= 0.99
    assert chi2_power(n3 - 2000, least_effect([0.5, 0.25, 0.25]), 2) < 0.99
    assert chi2_sample_size([0.9, 0.1], delta=0.02) < n2 / 3
    assert 4_000 < binomial_sample_size(0.99) < 6_000


def test_mutant_runs_are_sized_from_the_scenarios() -> None:
    from chaos.mutants import MUTANTS

    sizes = {name: m.size(load_builtin([m.scenario])[0]) for name, m in MUTANTS.items()}
    assert sizes["weights_skewed"] == chi2_sample_size([0.9, 0.1], delta=0.02)
    # flaky-5xx's primary fails transiently with p = 0.2; three in a row: 0.008 per request
    assert 1_500 < sizes["extra_retry"] < 2_000
    # seed_ignored is caught on the selector path: its traffic is only a formality
    assert all(n >= 100 for name, n in sizes.items() if name != "seed_ignored")
    # uniform fallback on high-failure: power 0.99 from the summed non-central chi-square
    assert 500 < sizes["uniform_fallback"] < 3_000
