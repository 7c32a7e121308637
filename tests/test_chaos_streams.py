"""The chaos harness on streams (SPEC 4.9) and hedging: fault kinds, scenario validation, and a
reduced run of the stream and hedge scenarios at a seed other than the suite's, with their mutants."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("scipy")

from chaos.__main__ import main
from chaos.faults import FaultModelError, FaultSampler, ProviderFaults
from chaos.scenario import ScenarioError, parse
from chaos.stream_faults import STREAM_FAULT_KINDS

SCENARIOS = ("streams-first-chunk", "streams-first-chunk-async", "hedge-slow-primary")
MUTANTS = {
    "first_chunk_not_awaited",
    "first_chunk_not_awaited_async",
    "replay_after_first_chunk",
    "replay_after_first_chunk_async",
    "hedge_never_fires",
    "hedge_delay_off",
    "hedge_loser_not_cancelled",
}


def _faults(stream_faults: object) -> ProviderFaults:
    return ProviderFaults.parse("openai/gpt-4o", {"stream_faults": stream_faults})


def test_stream_faults_are_drawn_at_their_rates() -> None:
    faults = _faults(
        {
            "stall": {"probability": 0.2, "seconds": 5},
            "break_before": 0.1,
            "error_event": {"probability": 0.1, "status": "429"},
            "break_after": {"probability": 0.2, "after_chunks": 3},
        }
    )
    sampler = FaultSampler(faults, 1)
    n = 20_000
    outcomes = [sampler.draw(0.0, 10.0, stream=True) for _ in range(n)]
    share = {k: sum(o.source == k for o in outcomes) / n for k in STREAM_FAULT_KINDS}
    assert share == pytest.approx(
        {"stall": 0.2, "break_before": 0.1, "error_event": 0.1, "break_after": 0.2}, abs=0.015
    )
    stall = next(o for o in outcomes if o.source == "stall")
    assert (stall.kind, stall.stall, stall.cut_after) == ("ok", 5.0, None)
    event = next(o for o in outcomes if o.source == "error_event")
    assert event.error_event == "429"
    assert next(o for o in outcomes if o.source == "break_before").cut_after == 0
    assert next(o for o in outcomes if o.source == "break_after").cut_after == 3
    # requests sent without stream=True never meet a stream fault
    assert {sampler.draw(0.0, 10.0, stream=False).source for _ in range(500)} == {"ok"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"stal": 0.1}, "unknown fault(s) ['stal']"),
        ({"break_before": 1.5}, "break_before: a probability in [0, 1]"),
        ({"stall": {"probability": 0.1}}, "stall.seconds: simulated seconds > 0"),
        ({"error_event": {"probability": 0.1, "status": "418"}}, "error_event.status"),
        ({"break_after": {"probability": 0.1, "after_chunks": 0}}, "(0 is break_before)"),
        ({"break_before": 0.6, "break_after": 0.6}, "add up to 1.2 > 1"),
    ],
)
def test_bad_stream_faults_name_the_field(raw: object, message: str) -> None:
    with pytest.raises(FaultModelError, match=r"stream_faults") as info:
        _faults(raw)
    assert message in str(info.value)


def _scenario(**config: Any) -> dict[str, Any]:
    return {
        "mode": config.pop("mode", "sync"),
        "config": {"models": ["openai/gpt-4o", "azure/gpt-4o"], **config},
        "providers": {"openai/gpt-4o": {}, "azure/gpt-4o": {}},
        "checks": ["stream_first_chunk"],
    }


def test_scenario_config_goes_through_the_runtime_options() -> None:
    s = parse(_scenario(first_chunk_timeout={"openai/gpt-4o": 2.0}), name="x")
    assert s.first_chunk_timeouts == {"openai/gpt-4o": 2.0}
    with pytest.raises(ScenarioError, match="first-chunk timeout"):
        parse(_scenario(first_chunk_timeout=-1), name="x")
    with pytest.raises(ScenarioError, match="hedging needs async clients"):
        parse(_scenario(hedge={"delay": 1.0}), name="x")
    with pytest.raises(ScenarioError, match="Hedge"):
        parse(_scenario(mode="async", hedge={"delay": "soon"}), name="x")
    hedged = parse(_scenario(mode="async", hedge={"delay": 1.0}), name="x")
    assert hedged.hedge_delay == 1.0
    assert type(hedged.init_kwargs()["hedge"]).__name__ == "Hedge"


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    out = tmp_path_factory.mktemp("chaos-streams")
    args = ["--quick", "--seed", "11", "--out", str(out), "--no-plots", "--workers", "2"]
    for name in SCENARIOS:
        args += ["--scenario", name]
    code = main(args)
    return code, json.loads((out / "results.json").read_text())


def test_stream_and_hedge_scenarios_pass_and_are_exercised(
    reduced_run: tuple[int, dict[str, Any]],
) -> None:
    code, data = reduced_run
    checks = [c for c in data["checks"] if c.get("mutant") is None]
    failed = [(c["scenario"], c["name"], c["summary"]) for c in checks if not c["passed"]]
    assert failed == []
    judged = {(c["scenario"], c["name"]) for c in checks if c["n"] > 0 and c["exercised"]}
    for scenario in SCENARIOS[:2]:
        assert (scenario, "stream_first_chunk") in judged
        assert (scenario, "stream_break_after_first") in judged
    for name in ("hedge_rate", "hedge_latency", "hedge_losers_cancelled"):
        assert ("hedge-slow-primary", name) in judged
    assert code == 0


def test_stream_and_hedge_mutants_are_caught(reduced_run: tuple[int, dict[str, Any]]) -> None:
    _, data = reduced_run
    verdicts = {m["mutant"]: m["caught"] for m in data["mutants"]}
    assert set(verdicts) == MUTANTS
    assert all(verdicts.values()), verdicts
