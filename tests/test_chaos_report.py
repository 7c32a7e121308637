"""The chaos report's plots and its plain-SDK baseline: series present, models named in full."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from chaos import plots
from chaos.baseline import main_model, run_plain
from chaos.jobs import Job, JobResult, execute
from chaos.scenario import Scenario, load_builtin
from chaos.trace import Trace

#: A model named by a number or an abbreviation ("o1", "a0") instead of its name.
ABBREVIATION = re.compile(r"^[a-z]\d$")


def _scenario(name: str) -> Scenario:
    return load_builtin([name])[0]


def test_plain_sdk_retries_with_its_own_policy_on_the_same_faults() -> None:
    """``weighted-failing``'s main model (weight 0.5) always answers 503: a plain client of it
    never gets an answer, after the SDK's default 1 + 2 attempts per call."""
    scenario = _scenario("weighted-failing")
    assert main_model(scenario) == "openai/gpt-4o"
    trace = Trace()
    calls = run_plain(scenario, 40, seed=3, trace=trace)
    assert len(calls) == 40
    assert not any(c.ok for c in calls)
    assert len(trace.http) == 40 * 3
    assert {r.key for r in trace.http} == {"openai/gpt-4o"}
    # the SDK's own backoff, on virtual time: two waits between 0.375 s and 1 s per call
    assert all(0.75 < c.seconds < 2.0 + 3 * 1.0 for c in calls)


def test_plain_sdk_baseline_is_reproducible_and_async_runs_on_virtual_time() -> None:
    scenario = _scenario("async-concurrent")
    first = run_plain(scenario, 200, seed=5)
    assert first == run_plain(scenario, 200, seed=5)
    assert 0.5 < sum(c.ok for c in first) / len(first) < 1.0


@pytest.fixture(scope="module")
def results() -> list[JobResult]:
    names = ("outage-primary", "flaky-5xx", "weighted-failing", "jittered-backoff")
    return [execute(Job(_scenario(n), 150, 7, baseline=True), show_progress=False) for n in names]


def test_library_beats_the_plain_sdk_through_an_outage(results: list[JobResult]) -> None:
    outage = next(r for r in results if r.scenario == "outage-primary")
    b = outage.plot["baseline"]
    assert b["calls"] == 150 == len(b["notdiamond"]) == len(b["plain_sdk"])
    library = sum(ok for _, ok in b["notdiamond"]) / 150
    plain = sum(ok for _, ok in b["plain_sdk"]) / 150
    assert library == 1.0
    assert plain < 0.8  # the primary is down from 100 s: a plain client has nowhere to go


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every figure the plots save, by file name (closed, still readable)."""
    saved: dict[str, Any] = {}
    original = plots._save

    def keep(fig: Any, path: Path) -> str:
        saved[path.name] = fig
        return original(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def _texts(fig: Any) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        out += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return [t for t in out if t]


def test_plots_name_every_model_and_draw_both_series(
    results: list[JobResult], figures: dict[str, Any], tmp_path: Path
) -> None:
    scenarios = {r.scenario: _scenario(r.scenario) for r in results}
    files = plots.plot_all(tmp_path, results, scenarios)
    assert {"outcomes.png", "success.png", "timelines.png", "waits.png"} <= set(files)
    for name in files:
        assert (tmp_path / name).stat().st_size > 10_000
        assert name in plots.CAPTIONS

    # what callers got: one panel per scenario, notdiamond and the plain SDK in each
    outcome_axes = [ax for ax in figures["outcomes.png"].axes if ax.get_lines()]
    assert len(outcome_axes) == len(results)
    for ax in outcome_axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert len(labels) == 2
        assert labels[0].startswith("notdiamond: ")
        assert labels[1].startswith("plain SDK (openai/gpt-4o): ")
        assert ax.get_yscale() == "log"
    # failed calls: both series per scenario, on an axis where 0% and small shares are apart
    ax = figures["success.png"].axes[0]
    assert ax.get_xscale() == "symlog"
    assert len(ax.collections) >= 2 * len(results)

    # every model is named in full where it is drawn; none by an abbreviation
    models = {k for s in scenarios.values() for k in s.order}
    for name in ("timelines.png", "waits.png", "weights.png"):
        texts = _texts(figures[name])
        assert not [t for t in texts if ABBREVIATION.match(t.strip())], name
    timeline_labels = " ".join(_texts(figures["timelines.png"]))
    for key in ("openai/gpt-4o", "azure/gpt-4o"):
        assert key in timeline_labels
    assert not re.search(r"\b[oa]\d\b", timeline_labels)
    wait_titles = [ax.get_title() for ax in figures["waits.png"].axes if ax.get_title()]
    assert any(t.startswith("openai/gpt-4o:") for t in wait_titles)
    assert {t.split(":")[0] for t in wait_titles if "/" in t.split(":")[0]} <= models


def test_summary_opens_with_the_glance_table_and_the_plain_sdk_beside_it(
    results: list[JobResult], tmp_path: Path
) -> None:
    from chaos.report import Summary, section_glance

    scenarios = {r.scenario: _scenario(r.scenario) for r in results}
    lines = section_glance(Summary(results, scenarios, {}, []))
    assert lines[0] == "## At a glance"
    header = next(line for line in lines if line.startswith("| scenario |"))
    for column in ("success", "p50 s", "p99 s", "HTTP requests / call", "waiting s / call"):
        assert f"| {column} |" in header
    assert "| plain SDK: success | plain SDK: p99 s | checks |" in header
    row = next(line for line in lines if line.startswith("| outage-primary |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "100.00%"  # notdiamond
    assert float(cells[7].rstrip("%")) < 80  # the plain SDK, same faults
    assert cells[-1] == "all passed"


def test_results_json_carries_what_callers_got_with_and_without_the_library(
    results: list[JobResult], tmp_path: Path
) -> None:
    import json

    from chaos.report import write_json

    write_json(tmp_path / "results.json", results, {})
    jobs = {j["label"]: j for j in json.loads((tmp_path / "results.json").read_text())["jobs"]}
    outage = jobs["outage-primary"]
    assert outage["glance"]["success"] == 1.0
    assert outage["plain_sdk"]["model"] == "openai/gpt-4o"
    assert outage["plain_sdk"]["max_retries"] == 2
    assert outage["plain_sdk"]["calls"] == 150
    assert outage["plain_sdk"]["success"] < 0.8


def test_a_job_that_crashes_is_a_result_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import chaos.jobs

    def crashing_driver(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the driver broke")

    monkeypatch.setitem(chaos.jobs.DRIVERS, "sync", crashing_driver)
    scenario = _scenario("outage-primary")
    assert scenario.mode == "sync"
    result = execute(Job(scenario, 20, 3, mutant="backoff_off"), show_progress=False)
    assert (result.label, result.mutant, result.seed, result.n) == (
        "outage-primary [mutant: backoff_off]",
        "backoff_off",
        3,
        20,
    )
    assert result.checks == []
    assert result.error is not None
    assert result.error.startswith("Traceback")
    assert "RuntimeError: the driver broke" in result.error


@pytest.mark.parametrize("name", ["streams-first-chunk", "streams-first-chunk-async"])
def test_the_plain_sdk_streams_the_same_requests_as_the_librarys_run(name: str) -> None:
    from chaos.drivers import DRIVERS, Progress

    scenario = _scenario(name)
    assert 0 < scenario.traffic.stream < 1
    plain = Trace()
    run_plain(scenario, 60, seed=4, trace=plain)
    library, _ = DRIVERS[scenario.mode](
        scenario, 60, 4, extra={}, progress=Progress(name, 60, False)
    )

    def streamed(trace: Trace) -> list[bool]:
        first = {r.request: r.stream for r in reversed(trace.http)}
        return [first[i] for i in range(60)]

    assert streamed(plain) == streamed(library)
    assert 0 < sum(streamed(plain)) < 60
