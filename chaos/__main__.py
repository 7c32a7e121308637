"""``python -m chaos`` (installed: ``python -m notdiamond.chaos``): run the chaos suite.

    python -m chaos                       # every scenario, fixed seed, full sizes, mutants
    python -m chaos --quick               # reduced sizes (what the test suite runs)
    python -m chaos --scenario flaky-5xx  # one scenario (and the mutants that target it)
    python -m chaos --random-seed         # fresh seeds (printed and recorded in the report)
    python -m notdiamond.chaos --init myapp.llm:setup   # your own init configuration under faults

Reports go to ``--out``; without it, the suite's own run inside this repository rewrites
``reports/chaos/`` and every other run (any ``--init`` run, any run elsewhere) writes
``./chaos-report/`` (``chaos/outdir.py``).

Exit status: 0 when every check passes and every broken runtime is caught, 1 otherwise, 2 for a
bad scenario file, setup function or argument.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import power
from .jobs import DEFAULT_SEED, Job, available_cpus, derive_seed, run_jobs
from .mutants import MUTANTS
from .mutants import caught as mutant_caught
from .outdir import default_out
from .report import plot_all, power_notes, run_info, write_json, write_summary
from .results import JobResult
from .scenario import Scenario, ScenarioError, load, load_builtin
from .sizing import sample_size
from .user_run import run_init


def build_jobs(
    scenarios: Sequence[Scenario], seed: int, *, quick: bool, mutants: bool
) -> list[Job]:
    jobs = [
        Job(s, sample_size(s, quick), derive_seed(seed, s.name), quick=quick) for s in scenarios
    ]
    if mutants:
        by_name = {s.name: s for s in scenarios}
        for m in MUTANTS.values():
            s = by_name.get(m.scenario)
            if s is None:
                continue
            # a statistical mutant's full size is minutes of SDK calls: --quick relies on its
            # selector-path check; exact ones are cheap and keep their size
            n = s.traffic.quick_n if quick and m.delta is not None else m.size(s)
            jobs.append(
                Job(
                    s,
                    n,
                    derive_seed(seed, s.name, m.name),
                    mutant=m.name,
                    checks=(m.check,),
                    quick=quick,
                )
            )
    return jobs


#: Where ``--detection`` writes its rates (read by later reports in the same directory).
DETECTION_FILE = "detection.json"


def detection_power(scenarios: Sequence[Scenario], k: int, *, quick: bool, out: Path) -> int:
    """Run every mutant at ``k`` fresh seeds; write the share caught to ``out/detection.json``."""
    seeds = [secrets.randbelow(2**31 - 1) for _ in range(k)]
    jobs: list[Job] = []
    for s in seeds:
        jobs += [j for j in build_jobs(scenarios, s, quick=quick, mutants=True) if j.mutant]
    started = time.perf_counter()
    print(
        f"chaos: detection power, {len(jobs)} mutant runs over {k} fresh seeds",
        file=sys.stderr,
        flush=True,
    )
    results = run_jobs(jobs)
    rates: dict[str, dict[str, Any]] = {}
    for res in results:
        assert res.mutant is not None
        entry = rates.setdefault(
            res.mutant,
            {"seeds": 0, "caught": 0, "crashed": 0, "n": res.n, "missed_seeds": []},
        )
        entry["seeds"] += 1
        if res.error:
            entry["crashed"] += 1
        if mutant_caught(res.mutant, res.checks):
            entry["caught"] += 1
        else:
            entry["missed_seeds"].append(res.seed)
    for entry in rates.values():
        entry["seed_list"] = seeds
        entry["sizes"] = "quick" if quick else "full"
        entry["wall_s"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / DETECTION_FILE
    # mutants measured now replace their earlier entries; the others keep theirs
    merged = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    merged.update(rates)
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    worst = min((e["caught"] / e["seeds"] for e in rates.values()), default=1.0)
    for name, e in sorted(rates.items()):
        print(f"  {name}: caught at {e['caught']}/{e['seeds']} fresh seeds", file=sys.stderr)
    return 0 if worst >= 0.99 else 1


def _load_average() -> str:
    """The 1/5/15-minute load averages at the end of the run (other work on the machine)."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except (AttributeError, OSError):  # not on Windows
        return ""


def _cpu_seconds() -> float:
    """CPU time of this process and its finished workers (0 where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main(argv: Sequence[str] | None = None) -> int:
    prog = f"python -m {__package__ or 'chaos'}"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--init",
        metavar="MODULE:FUNCTION",
        default=None,
        help="run your application's own configuration under the built-in faults: FUNCTION builds "
        "your clients, calls notdiamond.init and returns what it returned (imported with the "
        "current directory on sys.path)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="a scenario under chaos/scenarios/ (by name) or a path to a scenario file; with "
        "--init, a built-in fault scenario (healthy, outage, outage-<model>, flaky-5xx, "
        "rate-limits, slow-primary, stalled-streams, storm) or a file that may omit config; "
        "repeatable",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--random-seed", action="store_true", help="fresh seeds instead of the fixed default"
    )
    seeds.add_argument("--seed", type=int, default=None, help=f"base seed (default {DEFAULT_SEED})")
    parser.add_argument("--quick", action="store_true", help="reduced sizes: a fast smoke run")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report directory (default: reports/chaos for the suite's own run inside this "
        "repository, else ./chaos-report)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes (default: the cores available; with --init, 1)",
    )
    parser.add_argument("--no-mutants", action="store_true", help="skip the broken-runtime runs")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument(
        "--detection",
        type=int,
        default=0,
        metavar="K",
        help="measure detection power instead: run every mutant at K fresh seeds (sized as the "
        "run would be) and write DIR/detection.json, which later reports include",
    )
    parser.add_argument(
        "--traces",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write every attempt (virtual time, request, model, provider, outcome, wait "
        "before it, the runtime's decision) as JSON lines, one file per run",
    )
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = default_out(init=args.init is not None)
    seed = (
        secrets.randbelow(2**31 - 1)
        if args.random_seed
        else (DEFAULT_SEED if args.seed is None else args.seed)
    )
    if args.init is not None:
        if args.detection:
            parser.error("--detection measures the suite's mutants; it does not go with --init")
        return run_init(
            args.init,
            scenario_names=args.scenario,
            seed=seed,
            random_seed=args.random_seed,
            quick=args.quick,
            out=args.out,
            plots=not args.no_plots,
            trace_dir=None if args.traces is None else str(args.traces),
            command=" ".join([prog, *(sys.argv[1:] if argv is None else argv)]),
            workers=args.workers or 1,
        )

    started = time.perf_counter()
    try:
        scenarios: list[Scenario] = []
        names = [n for n in args.scenario if not n.endswith((".json", ".toml"))]
        paths = [n for n in args.scenario if n.endswith((".json", ".toml"))]
        if names or not paths:
            scenarios += load_builtin(names or None)
        scenarios += [load(p) for p in paths]
    except ScenarioError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2

    if args.detection > 0:
        return detection_power(scenarios, args.detection, quick=args.quick, out=args.out)
    jobs = build_jobs(scenarios, seed, quick=args.quick, mutants=not args.no_mutants)
    if args.traces is not None:
        for job in jobs:
            job.trace_dir = str(args.traces)
    for job in jobs:  # the latency plot's plain-SDK baseline (chaos/baseline.py)
        job.baseline = not args.no_plots and job.mutant is None
    cpus = available_cpus()
    workers = args.workers or max(1, min(cpus, len(jobs)))
    print(
        f"chaos: {len(scenarios)} scenario(s), {len(jobs)} run(s), seed {seed}"
        f"{' (random)' if args.random_seed else ''}, {'quick' if args.quick else 'full'} sizes, "
        f"{workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    for job in jobs:
        print(f"  queued {job.label}: {job.n:,} requests", file=sys.stderr)

    def done(res: JobResult) -> None:
        bad = [c.name for c in res.checks if not c.passed]
        verdict = (
            "crashed"
            if res.error
            else ("failed: " + ", ".join(bad) if bad else "all checks passed")
        )
        if res.mutant:
            verdict = (
                "caught" if bad and MUTANTS[res.mutant].check in bad else f"NOT caught ({verdict})"
            )
        print(
            f"  done {res.label}: {res.n:,} requests in {res.wall_s:.1f} s; {verdict}",
            file=sys.stderr,
            flush=True,
        )

    results = run_jobs(jobs, workers=workers, on_done=done)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in scenarios}
    plots = [] if args.no_plots else plot_all(out, results, by_name)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds()
    main_results = [r for r in results if r.mutant is None]
    info = run_info(
        command=" ".join([prog, *(sys.argv[1:] if argv is None else argv)]),
        mode="random" if args.random_seed else "fixed",
        seed=seed,
        random_seed=args.random_seed,
        quick=args.quick,
        wall_s=round(wall, 1),
        cpu_s=round(cpu, 1),
        workers=workers,
        cpus=cpus,
        requests=sum(r.n for r in results),
        http_requests=sum(r.http_requests for r in results),
        virtual_s=sum(r.virtual_s for r in main_results),
        alpha=power.ALPHA,
        power=power.POWER,
        load=_load_average(),
        delta=power.DELTA,
    )
    info["power_notes"] = power_notes(scenarios, results)
    detection_file = out / DETECTION_FILE
    if detection_file.exists():
        info["detection"] = json.loads(detection_file.read_text(encoding="utf-8"))
    data = write_json(out / "results.json", results, info)
    write_summary(out / "summary.md", results, by_name, info, plots)

    failed = [c for c in data["checks"] if not c["passed"]]
    missed = [m for m in data["mutants"] if not m["caught"]]
    crashed = [r for r in results if r.error]
    print(
        f"chaos: {len(data['checks']) - len(failed)}/{len(data['checks'])} checks passed, "
        f"{len(data['mutants']) - len(missed)}/{len(data['mutants'])} mutants caught, "
        f"{wall:.1f} s; report in {out}/summary.md",
        file=sys.stderr,
    )
    for c in failed:
        print(
            f"  FAILED {c['scenario']} / {c['name']} [{c['path']}]: {c['summary']}", file=sys.stderr
        )
    for m in missed:
        print(
            f"  NOT CAUGHT mutant {m['mutant']} ({m['check']} on {m['scenario']})", file=sys.stderr
        )
    for r in crashed:
        print(f"  CRASHED {r.label}:\n{r.error}", file=sys.stderr)
    return 1 if failed or missed or crashed else 0


if __name__ == "__main__":
    sys.exit(main())
