"""A reduced run of the chaos suite: every scenario at small n, fixed seed, and every mutant caught."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("scipy")

from chaos.__main__ import main
from chaos.checks import check_names
from chaos.mutants import MUTANTS
from chaos.scenario import builtin_paths

REQUIRED_SCENARIOS = {
    "healthy",
    "outage-primary",
    "flaky-5xx",
    "rate-limited",
    "slow-timeout",
    "weighted-failing",
    "async-concurrent",
    "e2e-loopback",
    "jittered-backoff",
    "high-failure",
    "per-model-policies",
}


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("chaos")
    code = main(["--quick", "--seed", "7", "--out", str(out), "--no-plots", "--workers", "2"])
    data = json.loads((out / "results.json").read_text())
    return code, data, out


def test_builtin_scenarios_cover_the_issue() -> None:
    assert {p.stem for p in builtin_paths()} >= REQUIRED_SCENARIOS


def test_reduced_run_passes_every_check(reduced_run: tuple[int, dict[str, Any], Path]) -> None:
    code, data, _ = reduced_run
    failed = [(c["scenario"], c["name"], c["summary"]) for c in data["checks"] if not c["passed"]]
    assert failed == []
    assert code == 0
    assert {c["scenario"] for c in data["checks"]} >= REQUIRED_SCENARIOS
    used = {name for p in builtin_paths() for name in json.loads(p.read_text())["checks"]}
    assert {c["name"] for c in data["checks"]} == used <= set(check_names())


def test_results_json_has_the_promised_fields(
    reduced_run: tuple[int, dict[str, Any], Path],
) -> None:
    _, data, out = reduced_run
    for check in data["checks"]:
        assert {"name", "scenario", "passed", "statistic", "p_value", "n", "seed"} <= set(check)
        assert check["n"] >= 0
        assert isinstance(check["seed"], int)
        if check["method"] in ("chi-square", "binomial"):
            assert check["p_value"] is not None
    assert (out / "summary.md").read_text().startswith("# Chaos suite report")

    def no_nan(token: str) -> None:
        raise AssertionError(f"results.json is not strict JSON: {token}")

    json.loads((out / "results.json").read_text(), parse_constant=no_nan)


def test_every_mutant_is_caught(reduced_run: tuple[int, dict[str, Any], Path]) -> None:
    _, data, _ = reduced_run
    verdicts = {m["mutant"]: m for m in data["mutants"]}
    assert set(verdicts) == set(MUTANTS)
    missed = [name for name, m in verdicts.items() if not m["caught"]]
    assert missed == []


def test_loopback_scenario_ran_over_sockets(reduced_run: tuple[int, dict[str, Any], Path]) -> None:
    _, data, _ = reduced_run
    job = next(j for j in data["jobs"] if j["label"] == "e2e-loopback")
    assert job["http_requests"] >= job["n"]
    names = {c["name"] for c in data["checks"] if c["scenario"] == "e2e-loopback"}
    assert {"attempts_per_policy", "backoff_waits", "conservation"} <= names


def test_a_failing_check_makes_the_run_fail(tmp_path: Path) -> None:
    """The exit status is non-zero when a check fails (here: a mutant run as the real runtime)."""
    from chaos import mutants

    with mutants.MUTANTS["backoff_off"].apply():
        code = main(
            [
                "--scenario",
                "flaky-5xx",
                "--quick",
                "--out",
                str(tmp_path),
                "--no-plots",
                "--no-mutants",
                "--workers",
                "1",
            ]
        )
    assert code == 1
    data = json.loads((tmp_path / "results.json").read_text())
    assert any(c["name"] == "backoff_waits" and not c["passed"] for c in data["checks"])
    assert "What failed" in (tmp_path / "summary.md").read_text()


def test_every_attempt_is_traced(tmp_path: Path) -> None:
    code = main(
        [
            "--scenario",
            "rate-limited",
            "--quick",
            "--out",
            str(tmp_path / "r"),
            "--no-plots",
            "--no-mutants",
            "--workers",
            "1",
            "--traces",
            str(tmp_path / "t"),
        ]
    )
    assert code == 0
    lines = [
        json.loads(x) for x in (tmp_path / "t" / "rate-limited.jsonl").read_text().splitlines()
    ]
    assert {"t", "request", "model", "provider", "outcome", "wait_before", "decision"} <= set(
        lines[0]
    )
    waited = [x for x in lines if x["wait_before"]]
    assert waited
    # what the provider saw between two attempts is what the runtime said it would wait
    assert all(abs(x["wait_before"] - x["runtime_wait_before"]) < 1e-6 for x in waited)
