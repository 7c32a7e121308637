"""``python -m benchmarks [--quick]``: run every benchmark and write the report.

1. pytest-benchmark over ``benchmarks/test_*.py`` (overhead, decision costs, harness throughput,
   the success-path cost of ``RedisState`` on a server it starts);
2. every scenario against every contender in virtual time (the original SDK in its own venv), and
   LiteLLM's Router in real time over loopback sockets (its own venv; full runs only); the fleet
   benchmark (``benchmarks/fleet.py``: shared against per-process breaker state, real time);
3. ``summary.md``, ``results.json`` and ``comparison.png`` in ``reports/bench/`` (``--quick``:
   ``reports/bench/quick/``), the overhead compared with ``benchmarks/baseline.json``.

Exit status: non-zero when a benchmark or a contender run breaks; in a full run also when the
library's own cost regressed by more than 10% over the baseline. ``--quick`` never fails on times.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import openai

from benchmarks import fleet, litellm_router, original_sdk, profile_hook, report
from benchmarks.contenders import (
    IN_PROCESS,
    ORIGINAL_SDK,
    PLAIN_SDK,
    THIS_LIBRARY,
    THIS_LIBRARY_RECOMMENDED,
    breaker_available,
    recommended_options,
)
from benchmarks.scenarios import (
    ALL_SCENARIOS,
    BACKOFF,
    MAX_RETRIES,
    MODELS,
    SCENARIOS,
    TIMEOUT,
    RequestRecord,
    Workload,
    run_scenario,
)

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = BENCH_DIR.parent
BASELINE: Final = BENCH_DIR / "baseline.json"

#: pytest-benchmark options and environment per mode.
PYTEST_OPTIONS: Final = {
    "full": ["--benchmark-max-time=2.0", "--benchmark-min-rounds=200", "--benchmark-warmup=on"],
    "quick": ["--benchmark-max-time=0.05", "--benchmark-min-rounds=20"],
}
PYTEST_ENV: Final = {
    "full": {
        "BENCH_HOOK_ROUNDS": "20000",
        "BENCH_THROUGHPUT_REQUESTS": "400",
        "BENCH_PAIRED_ROUNDS": "600",
        "BENCH_STATE_ROUNDS": "4000",
    },
    "quick": {
        "BENCH_HOOK_ROUNDS": "2000",
        "BENCH_THROUGHPUT_REQUESTS": "100",
        "BENCH_PAIRED_ROUNDS": "40",
        "BENCH_STREAM_CHUNKS": "1000",
        "BENCH_STATE_ROUNDS": "300",
    },
}
REQUESTS: Final = {"full": 2000, "quick": 300}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="few rounds; never fails on times")
    parser.add_argument("--out", type=Path, help="report directory (default reports/bench[/quick])")
    parser.add_argument("--requests", type=int, help="logical requests per scenario run")
    parser.add_argument("--seed", type=int, default=Workload.seed)
    parser.add_argument(
        "--no-original", action="store_true", help="skip notdiamond 0.4.12 (no venv, no pip)"
    )
    parser.add_argument(
        "--no-litellm",
        action="store_true",
        help="skip LiteLLM's Router (no venv, no pip; --quick always skips it)",
    )
    parser.add_argument(
        "--litellm-requests",
        type=int,
        default=litellm_router.REQUESTS,
        help="LiteLLM's logical requests per scenario (real time: 0.5 s each)",
    )
    parser.add_argument(
        "--no-fleet",
        action="store_true",
        help="skip the fleet benchmark (shared vs per-process breaker state; needs Redis)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: rewrite summary.md and the plot from the report's results.json",
    )
    parser.add_argument(
        "--update-baseline", action="store_true", help="write this run's overhead to baseline.json"
    )
    return parser.parse_args(argv)


def require_redis_server() -> None:
    """The RedisState benchmark (``test_state.py``) starts a real server: fail at once, naming the
    fixes, when there is no server binary (never a silent skip)."""
    from chaos.redis_server import find_server_binary

    try:
        find_server_binary()
    except RuntimeError as exc:
        raise SystemExit(f"benchmarks: the RedisState benchmark needs a server: {exc}") from None


def run_pytest_benchmarks(mode: str, raw_json: Path) -> list[dict[str, Any]]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(BENCH_DIR / "test_overhead.py"),
        str(BENCH_DIR / "test_decisions.py"),
        str(BENCH_DIR / "test_streaming.py"),
        str(BENCH_DIR / "test_state.py"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--benchmark-only",
        f"--benchmark-json={raw_json}",
        "--benchmark-columns=min,median,mean,rounds",
        *PYTEST_OPTIONS[mode],
    ]
    env = {**os.environ, **PYTEST_ENV[mode]}
    done = subprocess.run(command, cwd=REPO_ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks: pytest-benchmark failed (exit {done.returncode})")
    benchmarks: list[dict[str, Any]] = json.loads(raw_json.read_text())["benchmarks"]
    return benchmarks


def run_original(workload: Workload, skip: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The original SDK's records per scenario, and how it fared."""
    if skip:
        return {}, {"status": "skipped", "reason": "--no-original was given"}
    environment = original_sdk.ensure_environment()
    if environment.python is None:
        print(f"benchmarks: notdiamond 0.4.12 unavailable: {environment.problem}", file=sys.stderr)
        return {}, {"status": "unavailable", "reason": environment.problem}
    started = time.perf_counter()
    payload = original_sdk.run(environment.python, workload, list(SCENARIOS))
    return payload["results"], {
        "status": "ok",
        "version": payload["notdiamond"],
        "openai": payload["openai"],
        "wall_seconds": time.perf_counter() - started,
    }


def run_litellm(
    workload: Workload, skip_reason: str | None
) -> tuple[dict[str, dict[str, list[RequestRecord]]], dict[str, Any]]:
    """LiteLLM's records per configuration label and scenario (real time), and how it fared."""
    if skip_reason is not None:
        return {}, {"status": "skipped", "reason": skip_reason}
    environment = litellm_router.ensure_environment()
    if environment.python is None:
        print(f"benchmarks: LiteLLM unavailable: {environment.problem}", file=sys.stderr)
        return {}, {"status": "unavailable", "reason": environment.problem}
    started = time.perf_counter()
    payload = litellm_router.run(environment.python, workload, list(ALL_SCENARIOS))
    return payload["results"], {
        "status": "ok",
        "version": payload["litellm"],
        "openai": payload["openai"],
        "requests": workload.requests,
        "configs": payload["configs"],
        "wall_seconds": time.perf_counter() - started,
    }


def run_contenders(
    workload: Workload, original_results: dict[str, Any], litellm_results: dict[str, Any]
) -> dict[str, dict[str, list[RequestRecord]]]:
    """Per scenario, per contender: the records, in the report's order."""
    runs: dict[str, dict[str, list[RequestRecord]]] = {name: {} for name in ALL_SCENARIOS}
    for name, records in original_results.items():
        runs[name][ORIGINAL_SDK] = records
    for label, by_scenario in litellm_results.items():
        for name, records in by_scenario.items():
            runs[name][label] = records
    for name, scenario in SCENARIOS.items():
        for contender, build in IN_PROCESS.items():
            runs[name][contender] = run_scenario(build, scenario, workload)
    order = [*list(IN_PROCESS)[:2], ORIGINAL_SDK, *list(IN_PROCESS)[2:]]
    order += [*litellm_router.LABELS.values(), *litellm_router.OUR_LABELS.values()]
    return {
        name: {c: by_contender[c] for c in order if c in by_contender}
        for name, by_contender in runs.items()
        if by_contender
    }


def scenario_setup(workload: Workload, litellm_requests: int) -> str:
    return (
        f"Virtual time, seed {workload.seed}: {workload.requests} logical requests per scenario, one "
        f"every {workload.interarrival:g} s, each against the in-process fake provider (healthy latency "
        "0.5 s, log-normal). Every contender gets the same two clients built with SDK defaults "
        f"(`max_retries=2`) and a {TIMEOUT:g} s timeout. Resilient contenders: models "
        f"`{MODELS}`, `max_retries={MAX_RETRIES}`, `backoff={BACKOFF:g}`; the recommended row instead "
        f"`{recommended_options()}` (its reasons: the README's *Recommended for production*). "
        "The plain SDK and the "
        "tenacity loop (the OpenAI cookbook recipe: `wait_random_exponential(min=1, max=60)`, "
        "`stop_after_attempt(6)`) use the primary only. Latency: call to result or error, failures "
        "included. Waiting: seconds in `time.sleep` (backoff, Retry-After) per request.\n\n"
        "Rows marked **real time**: LiteLLM's Router cannot run in virtual time (its requests and "
        "retry sleeps happen in its native core), so it runs in real time over loopback sockets "
        "against a server drawing the same faults from the same seeds (`benchmarks/loopback.py`), "
        f"{litellm_requests} logical requests per scenario arriving every {workload.interarrival:g} s "
        "concurrently, all runs at once; this library's default and recommended rows run again "
        "under the same conditions at the same time. Compare real-time rows with each other: fewer "
        "requests (a rougher p99), latencies that include the machine's load, and no view of the "
        "waiting inside LiteLLM (n/a)."
    )


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not available on this platform
        return None


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the library's working tree differed from it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO_ROOT)
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "library_modified": bool(git("status", "--porcelain", "--", "notdiamond")),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    out: Path = args.out or (REPO_ROOT / "reports" / "bench" / ("quick" if args.quick else ""))
    scratch = REPO_ROOT / "reports" / "bench" / "tmp"
    out.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    workload = Workload(requests=args.requests or REQUESTS[mode], seed=args.seed)
    if args.render_only:
        stored = json.loads((out / "results.json").read_text())
        report.write_summary(stored, out / "summary.md", "comparison.png")
        report.write_plot(stored, out / "comparison.png")
        print(f"benchmarks: rewrote {out / 'summary.md'} from {out / 'results.json'}")
        return 0

    started = time.perf_counter()
    load_at_start = _load_average()
    require_redis_server()
    benchmarks = run_pytest_benchmarks(mode, scratch / f"pytest-benchmark-{mode}.json")
    # LiteLLM first, alone: it runs in real time, so it must not share the CPUs with the rest.
    litellm_skip = (
        "--quick run (CI): LiteLLM runs in real time"
        if args.quick
        else ("--no-litellm was given" if args.no_litellm else None)
    )
    litellm_results, litellm_status = run_litellm(
        Workload(requests=args.litellm_requests, seed=args.seed), litellm_skip
    )
    original_results, original = run_original(workload, args.no_original or False)
    runs = run_contenders(workload, original_results, litellm_results)
    # real time, several processes: 1, 4 and 16 processes (--quick: 1 and 4)
    fleet_section = None if args.no_fleet else fleet.run(mode)

    overhead = report.overhead_rows(benchmarks)
    paired = report.paired_rows(benchmarks)
    metrics = report.overhead_metrics(overhead, paired)
    baseline_section: dict[str, Any]
    if BASELINE.exists():
        baseline = json.loads(BASELINE.read_text())
        checks = report.compare_with_baseline(metrics, baseline["overhead_median_us"])
        baseline_section = {
            "file": "benchmarks/baseline.json",
            "recorded": baseline.get("recorded"),
            "checks": [{**c.__dict__, "change": c.change} for c in checks],
            "regressions": [c.metric for c in checks if c.regressed],
        }
    else:
        baseline_section = {"note": "No `benchmarks/baseline.json` yet: nothing to compare with."}

    scenario_results = {
        name: {
            "title": ALL_SCENARIOS[name].title,
            "healthy_model": ALL_SCENARIOS[name].has_healthy_model,
            "contenders": {c: report.scenario_stats(r) for c, r in by_contender.items()},
        }
        for name, by_contender in runs.items()
    }
    real = litellm_router.OUR_LABELS
    targets = {
        "recommended": THIS_LIBRARY_RECOMMENDED,
        "options": recommended_options(),
        "checks": report.target_checks(
            scenario_results, THIS_LIBRARY_RECOMMENDED, THIS_LIBRARY, PLAIN_SDK
        ),
        "real_time_checks": report.target_checks(
            scenario_results, real["recommended"], real["default"], real["plain"]
        ),
        "notes": []
        if breaker_available()
        else [
            "The circuit breaker is not on this build yet (`notdiamond.CircuitBreaker` missing): "
            "the recommended row runs with the deadline only, and turns the breaker on by itself "
            "once the library has it."
        ],
    }
    results: dict[str, Any] = {
        "mode": mode,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "environment": {
            "python": platform.python_version(),
            "openai": openai.__version__,
            "machine": f"{platform.system()} {platform.machine()}",
            "cpu_count": os.cpu_count(),
            # The 1-minute load average when the run started and when it ended: timings (the
            # hook costs, the real-time rows) are only as quiet as the machine was.
            "load_average": [load_at_start, _load_average()],
            **git_state(),
        },
        "overhead_goal_us": report.OVERHEAD_GOAL_US,
        "overhead": overhead,
        "paired": paired,
        "state": report.state_rows(benchmarks),
        "overhead_median_us": metrics,
        "baseline": baseline_section,
        "hook_profile": profile_hook.where_time_goes(),
        "decisions": report.decision_rows(benchmarks),
        "memory": report.memory_rows(benchmarks),
        "scenario_setup": scenario_setup(workload, args.litellm_requests),
        "workload": workload.__dict__,
        "original_sdk": original,
        "litellm": litellm_status,
        "scenarios": scenario_results,
        "targets": targets,
        "fleet": fleet_section,
        "wall_seconds": time.perf_counter() - started,
    }
    plot = "comparison.png"
    report.write_results(results, out / "results.json")  # first: the data outlives a bad plot
    report.write_summary(results, out / "summary.md", plot)
    report.write_plot(results, out / plot)
    print(f"benchmarks: wrote {out / 'summary.md'} ({results['wall_seconds']:.0f} s)")

    if args.update_baseline:
        BASELINE.write_text(
            json.dumps(
                {
                    "recorded": results["generated"],
                    "environment": results["environment"],
                    "overhead_median_us": metrics,
                },
                indent=2,
            )
            + "\n"
        )
        print(f"benchmarks: baseline updated: {BASELINE}")
    if original["status"] == "unavailable" and mode == "full":
        print(
            f"benchmarks: notdiamond 0.4.12 could not be run: {original['reason']}", file=sys.stderr
        )
        return 1
    if litellm_status["status"] == "unavailable" and mode == "full":
        print(f"benchmarks: LiteLLM could not be run: {litellm_status['reason']}", file=sys.stderr)
        return 1
    regressions = baseline_section.get("regressions", [])
    if regressions and mode == "full" and not args.update_baseline:
        print(f"benchmarks: overhead regression (> 10%): {', '.join(regressions)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
