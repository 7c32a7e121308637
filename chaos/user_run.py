"""``--init MODULE:FUNCTION``: run the application's own configuration under the built-in faults.

Capture the configuration (:mod:`chaos.user_config`), build the scenarios around it
(:mod:`chaos.user_scenarios`, or the ``--scenario`` files), run each against the fake providers
in-process on virtual time (the drivers of :mod:`chaos.drivers`), judge each run with the checks
that apply, measure it and derive the findings (:mod:`chaos.findings`), and write the report
(:mod:`chaos.user_report`).

Exit status: 0 when every check passed (findings are advice and never change it), 1 when a check
failed or a run crashed, 2 when the setup function or a scenario cannot be used (the message names
the fix).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .baseline import MAX_CALLS, Call, library_calls, run_plain
from .checks import RunView, run_checks
from .drivers import DRIVERS, Progress, quiet_runtime_logs
from .findings import Finding, findings_for, measure
from .health import recording
from .jobs import crashed, derive_seed, glance, plot_extract, wait_tolerance
from .results import JobResult
from .scenario import ScenarioError
from .sizing import sample_size
from .trace_file import trace_path, write_trace
from .user_config import Captured, SetupError, capture, sdk_retries_as_captured
from .user_report import write_report
from .user_scenarios import UserScenario, fault_scenarios, load_file, select

#: Time-to-outcome samples kept per scenario for the report's plot.
_DURATION_SAMPLES = 2000


@dataclass
class UserResult:
    """One scenario's run: the checks' verdicts, the figures, the measures and the findings."""

    user: UserScenario
    job: JobResult
    figures: dict[str, float] = field(default_factory=dict)
    measures: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    #: Time to outcome of (a sample of) the calls, virtual seconds.
    durations: list[float] = field(default_factory=list)
    #: The same faults met by the plain SDK (:mod:`chaos.baseline`), and the library's calls over
    #: the same first calls; both empty when the baseline was not run (``--no-plots``).
    plain: list[Call] = field(default_factory=list)
    library: list[Call] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.user.scenario.name

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.job.checks if c.verdict == "fail"]


def execute(
    user: UserScenario,
    captured: Captured,
    n: int,
    seed: int,
    trace_dir: str | None = None,
    plain: bool = False,
) -> UserResult:
    """Run one scenario in this process: traffic, checks, figures, measures (the findings come
    once every scenario has run: they compare with the healthy baseline)."""
    scenario = user.scenario
    started = time.perf_counter()
    cpu_started = time.process_time()
    view = None
    try:
        with quiet_runtime_logs(), sdk_retries_as_captured(captured):
            with recording() as health:
                trace, virtual = DRIVERS[scenario.mode](
                    scenario,
                    n,
                    seed,
                    extra=captured.extra,
                    progress=Progress(scenario.name, n, True),
                )
            trace.health = health
            if trace_dir:
                write_trace(trace_path(trace_dir, scenario.name), trace)
            view = RunView(scenario, seed, trace, extra_init=captured.extra)
            tolerance = wait_tolerance(scenario)
            if tolerance is not None:
                view.tolerance = tolerance
            checks = run_checks(view, scenario.checks)
            figures = glance(view)
            measures = measure(user, view)
            plot = plot_extract(scenario, trace, view)
    except Exception as exc:  # a crash is reported with the run, not as a traceback of the tool
        return UserResult(user, crashed(scenario.name, scenario.name, None, seed, n, started, exc))
    job = JobResult(
        scenario.name,
        scenario.name,
        None,
        seed,
        n,
        checks,
        time.perf_counter() - started,
        virtual,
        len(trace.http),
        plot,
        trace.max_in_flight,
        cpu_s=time.process_time() - cpu_started,
    )
    result = UserResult(user, job, figures, measures, durations=_durations(view))
    if plain:
        count = min(n, MAX_CALLS)
        result.plain = run_plain(scenario, count, seed)
        result.library = library_calls(view, count)
    return result


def _durations(view: RunView) -> list[float]:
    out = []
    for r in view.requests:
        ends, recs = view.endings.get(r, []), view.http.get(r, [])
        if ends and recs:
            out.append(ends[0].at - recs[0].start)
    step = max(1, len(out) // _DURATION_SAMPLES)
    return out[::step]


Run = tuple[UserScenario, Captured, int, int, "str | None", bool]


def _execute(run: Run) -> UserResult:
    return execute(*run)


def _execute_all(runs: list[Run], workers: int) -> Iterator[UserResult]:
    """Each run's result, in order: in this process, or over ``workers`` processes."""
    if workers <= 1 or len(runs) <= 1:
        for run in runs:
            yield execute(*run)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
    with ctx.Pool(min(workers, len(runs))) as pool:
        yield from pool.imap(_execute, runs, chunksize=1)


def scenarios_for(captured: Captured, names: Sequence[str], *, quick: bool) -> list[UserScenario]:
    """The built-in fault scenarios (all, or those ``names`` select) and the scenario files."""
    files = [n for n in names if n.endswith((".json", ".toml"))]
    picked = [n for n in names if n not in files]
    chosen: list[UserScenario] = []
    if picked or not files:
        builtin = fault_scenarios(captured, quick=quick)
        chosen += select(builtin, picked) if picked else builtin
    chosen += [load_file(p, captured) for p in files]
    return chosen


def run_init(
    target: str,
    *,
    scenario_names: Sequence[str],
    seed: int,
    random_seed: bool,
    quick: bool,
    out: Path,
    plots: bool,
    trace_dir: str | None,
    command: str,
    workers: int = 1,
) -> int:
    """The whole ``--init`` run; returns the exit status."""
    started = time.perf_counter()
    try:
        captured = capture(target)
        scenarios = scenarios_for(captured, scenario_names, quick=quick)
    except (SetupError, ScenarioError) as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    print(
        f"chaos: --init {target}: {len(captured.clients)} client(s) "
        f"({', '.join(c.kind for c in captured.clients)}), models {captured.order}; "
        f"{len(scenarios)} scenario(s), seed {seed}, {'quick' if quick else 'full'} sizes, "
        f"{max(1, min(workers, len(scenarios)))} process(es)",
        file=sys.stderr,
        flush=True,
    )
    runs = [
        (
            user,
            captured,
            sample_size(user.scenario, quick),
            derive_seed(seed, "init", user.scenario.name),
            trace_dir,
            plots,
        )
        for user in scenarios
    ]
    results: list[UserResult] = []
    for res in _execute_all(runs, workers):
        results.append(res)
        n = res.job.n
        verdict = (
            "crashed"
            if res.job.error
            else (
                "failed: " + ", ".join(res.failed_checks)
                if res.failed_checks
                else "all checks passed"
            )
        )
        print(
            f"  done {res.name}: {n:,} calls in {res.job.wall_s:.1f} s; {verdict}",
            file=sys.stderr,
            flush=True,
        )
    baseline = next((r.figures for r in results if r.user.kind == "healthy" and r.figures), None)
    for r in results:
        if r.figures:
            r.findings = findings_for(r.user, r.figures, r.measures, captured, baseline)
    info: dict[str, Any] = {
        "command": command,
        "target": target,
        "seed": seed,
        "mode": "random" if random_seed else "fixed",
        "quick": quick,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, captured, results, info, plots=plots)
    failed = [(r.name, c) for r in results for c in r.job.checks if c.verdict == "fail"]
    crashed = [r for r in results if r.job.error]
    advice = sum(1 for r in results for f in r.findings if f.level == "advice")
    total = sum(len(r.job.checks) for r in results)
    print(
        f"chaos: {total - len(failed)}/{total} checks passed, {advice} finding(s) with advice; "
        f"report in {out}/summary.md",
        file=sys.stderr,
    )
    for name, c in failed:
        print(f"  FAILED {name} / {c.name}: {c.summary}", file=sys.stderr)
    for r in crashed:
        print(f"  CRASHED {r.name}:\n{r.job.error}", file=sys.stderr)
    for r in results:
        for f in r.findings:
            if f.level == "advice":
                print(f"  ADVICE {r.name}: {f.text}", file=sys.stderr)
    return 1 if failed or crashed else 0
