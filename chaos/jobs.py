"""Jobs: one scenario at one size (optionally under a mutant), run in one process, then judged.

Jobs are independent and are spread over the machine's cores (``multiprocessing``); each returns
its check results and the small extracts the report plots.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .checks import RunView, checks_for, needs_traffic, run_checks
from .drivers import DRIVERS, Progress, quiet_runtime_logs
from .health import recording
from .results import JobResult
from .scenario import Scenario, expected_http_per_request
from .sizing import auto_sizes, sample_size
from .trace import Trace
from .trace_file import trace_path, write_trace

#: Seed of the default (reproducible) run.
DEFAULT_SEED = 20_251_125

#: Tolerance of waits measured over real sockets (real seconds): below, above. A wait is never
#: shorter; on a loaded machine (load average 11 on 2 cores: up to 162 ms seen) it can be longer.
SERVER_WAIT_TOLERANCE = (0.003, 0.500)

__all__ = [
    "DEFAULT_SEED",
    "Job",
    "JobResult",
    "auto_sizes",
    "derive_seed",
    "execute",
    "run_jobs",
    "sample_size",
]


def derive_seed(base: int, *parts: str) -> int:
    """A per-scenario (and per-mutant) seed: stable across runs and machines."""
    return (base * 2_654_435_761 + zlib.crc32("/".join(parts).encode())) % (2**31 - 1)


@dataclass
class Job:
    scenario: Scenario
    n: int
    seed: int
    mutant: str | None = None
    #: Checks to run (default: the scenario's).
    checks: tuple[str, ...] | None = None
    quick: bool = False
    #: Write the run's attempt trace here as JSON lines (``--traces DIR``).
    trace_dir: str | None = None
    #: Also run the plain-SDK baseline on the same faults for the report (``chaos/baseline.py``).
    baseline: bool = False

    @property
    def label(self) -> str:
        return self.scenario.name + (f" [mutant: {self.mutant}]" if self.mutant else "")

    @property
    def cost(self) -> float:
        per = expected_http_per_request(self.scenario)
        if self.scenario.mode == "async":
            per *= 1.3
        if self.scenario.mode == "server":
            per *= 4 + 60 * self.scenario.time_scale
        return self.n * per


def wait_tolerance(scenario: Scenario) -> tuple[float, float] | None:
    """The tolerance of the checks on waits for a run over real sockets (``None``: exact)."""
    if scenario.mode != "server":
        return None
    low, high = SERVER_WAIT_TOLERANCE
    return low / scenario.time_scale, high / scenario.time_scale


def crashed(
    label: str, name: str, mutant: str | None, seed: int, n: int, started: float, exc: Exception
) -> JobResult:
    """A run that raised (``started``: its ``time.perf_counter()`` start), with the traceback."""
    import traceback

    return JobResult(
        label,
        name,
        mutant,
        seed,
        n,
        [],
        time.perf_counter() - started,
        0.0,
        0,
        error="".join(traceback.format_exception(exc)),
    )


def execute(job: Job, *, show_progress: bool = True) -> JobResult:
    """Run one job in this process: traffic, then checks (the mutant still applied), then the
    plot extracts."""
    from .mutants import MUTANTS

    scenario = job.scenario
    started = time.perf_counter()
    cpu_started = time.process_time()
    progress = Progress(job.label, job.n, show_progress)
    mutant = MUTANTS[job.mutant] if job.mutant else None
    driver = DRIVERS[scenario.mode]
    tolerance = wait_tolerance(scenario)
    try:
        with quiet_runtime_logs(), contextlib.ExitStack() as stack:
            extra = stack.enter_context(mutant.apply()) if mutant else {}
            names = job.checks or scenario.checks
            if needs_traffic(checks_for(scenario, names)):
                with recording() as health:
                    trace, virtual = driver(
                        scenario, job.n, job.seed, extra=extra, progress=progress
                    )
                trace.health = health
            else:  # only checks that draw from the runtime's selector: no traffic to send
                trace, virtual = Trace(), 0.0
            if job.trace_dir:
                write_trace(trace_path(job.trace_dir, job.label), trace)
            view = RunView(scenario, job.seed, trace, extra_init=extra)
            if tolerance is not None:
                view.tolerance = tolerance
            results = run_checks(view, names)
    except Exception as exc:  # a crash is reported as a failed job, not a traceback
        return crashed(job.label, scenario.name, job.mutant, job.seed, job.n, started, exc)
    for r in results:
        r.mutant = job.mutant
    plot = {} if job.mutant else plot_extract(scenario, trace, view)
    if job.baseline and not job.mutant:
        plot["baseline"] = _baseline(view, job.seed)
    return JobResult(
        job.label,
        scenario.name,
        job.mutant,
        job.seed,
        job.n,
        results,
        time.perf_counter() - started,
        virtual,
        len(trace.http),
        plot,
        trace.max_in_flight,
        cpu_s=time.process_time() - cpu_started,
    )


def _baseline(view: RunView, seed: int) -> dict[str, Any]:
    """The plain SDK on the same faults (a plot's input, not a check: a crash is reported)."""
    from .baseline import compare

    try:
        return compare(view, seed)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def glance(view: RunView) -> dict[str, float]:
    """What one run did to its callers: success rate, time to outcome, HTTP requests and time
    spent between attempts per call (virtual seconds; a call starts with its first request)."""
    n = len(view.requests)
    durations = []
    ok = waited = 0.0
    for r in view.requests:
        ends, recs = view.endings.get(r, []), view.http.get(r, [])
        if ends and ends[0].kind == "response":
            ok += 1
        if ends and recs:
            durations.append(ends[0].at - recs[0].start)
        waited += sum(max(0.0, b.start - a.end) for a, b in itertools.pairwise(recs))
    http = sum(len(v) for v in view.http.values())
    p50, p99 = np.percentile(durations, [50, 99]) if durations else (math.nan, math.nan)
    return {
        "calls": n,
        "success": ok / n if n else math.nan,
        "p50_s": float(p50),
        "p99_s": float(p99),
        "http_per_call": http / n if n else math.nan,
        "wait_per_call_s": waited / n if n else math.nan,
    }


def plot_extract(scenario: Scenario, trace: Trace, view: RunView) -> dict[str, Any]:
    """The small pieces of a trace the report plots (a trace itself can be 100k records)."""
    rng = random.Random(1)
    latencies: dict[str, list[float]] = {}
    for rec in trace.http:
        if rec.outcome == "ok" or rec.source == "mix":
            latencies.setdefault(rec.key, []).append(rec.latency)
    for k, v in latencies.items():
        if len(v) > 4000:
            latencies[k] = rng.sample(v, 4000)
    timeline = []
    by_request = view.http
    eventful = [r for r, recs in by_request.items() if len(recs) > 1][:30]
    if len(eventful) < 30:
        eventful += [r for r in by_request if r not in eventful][: 30 - len(eventful)]
    for r in sorted(eventful):
        t0 = by_request[r][0].start
        timeline.append(
            {
                "request": r,
                "attempts": [(x.key, x.start - t0, x.end - t0, x.outcome) for x in by_request[r]],
            }
        )
    pairs = view.wait_pairs()
    # the model of each gap, in wait_pairs' order: retries per model, for the waits plot
    keys = [a.key for recs in view.http.values() for a, _ in itertools.pairwise(recs)]
    waits_by_model: dict[str, list[tuple[float, float, float]]] = {}
    for key, (e, o, _, kind, low, _) in zip(keys, pairs, strict=True):
        if kind == "retry":
            waits_by_model.setdefault(key, []).append((e, o, low))
    for key, waits in waits_by_model.items():
        if len(waits) > 3000:
            waits_by_model[key] = rng.sample(waits, 3000)
    jitter = scenario.jitter
    draws = []
    if jitter > 0:
        draws = [
            (1 - o / e) / jitter
            for e, o, governed, k, _, _ in pairs
            if k == "retry" and not governed and e > 0
        ]
        if len(draws) > 4000:
            draws = rng.sample(draws, 4000)
    if len(pairs) > 3000:
        pairs = rng.sample(pairs, 3000)
    dists = {}
    for key, f in scenario.providers.items():
        dists[key] = {
            "kind": f.latency.kind,
            "a": f.latency.a,
            "b": f.latency.b,
            "timeout": scenario.timeouts[key],
        }
    return {
        "glance": glance(view),
        "latencies": latencies,
        "timeline": timeline,
        "waits": pairs,
        "waits_by_model": waits_by_model,
        "jitter_draws": draws,
        "latency_model": dists,
    }


def _execute_in_worker(job: Job) -> JobResult:
    return execute(job, show_progress=True)


def run_jobs(
    jobs: list[Job],
    *,
    workers: int | None = None,
    on_done: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run jobs, longest first, over ``workers`` processes (default: the cores available)."""
    if workers is None:
        workers = max(1, min(len(jobs), available_cpus()))
    ordered = sorted(jobs, key=lambda j: -j.cost)
    results: list[JobResult] = []
    if workers <= 1:
        for job in ordered:
            res = execute(job)
            results.append(res)
            if on_done:
                on_done(res)
        return results
    import multiprocessing as mp

    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
    with ctx.Pool(workers, maxtasksperchild=4) as pool:
        for res in pool.imap_unordered(_execute_in_worker, ordered, chunksize=1):
            results.append(res)
            if on_done:
                on_done(res)
    return results


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
