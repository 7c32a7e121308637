"""``python -m chaos``: run the chaos suite and write ``reports/chaos/``.

    python -m chaos                       # every scenario, fixed seed, full sizes, mutants
    python -m chaos --quick               # reduced sizes (what the test suite runs)
    python -m chaos --scenario flaky-5xx  # one scenario (and the mutants that target it)
    python -m chaos --random-seed         # fresh seeds (printed and recorded in the report)

Exit status: 0 when every check passes and every broken runtime is caught, 1 otherwise, 2 for a
bad scenario file or argument.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import power
from .jobs import DEFAULT_SEED, Job, available_cpus, derive_seed, run_jobs
from .mutants import MUTANTS
from .report import plot_all, power_notes, run_info, write_json, write_summary
from .results import JobResult
from .scenario import Scenario, ScenarioError, load, load_builtin
from .sizing import sample_size


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


def _cpu_seconds() -> float:
    """CPU time of this process and its finished workers (0 where the platform cannot tell)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return 0.0
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="a scenario under chaos/scenarios/ (by name) or a path to a scenario file; repeatable",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--random-seed", action="store_true", help="fresh seeds instead of the fixed default"
    )
    seeds.add_argument("--seed", type=int, default=None, help=f"base seed (default {DEFAULT_SEED})")
    parser.add_argument("--quick", action="store_true", help="reduced sizes: a fast smoke run")
    parser.add_argument("--out", type=Path, default=Path("reports/chaos"), help="report directory")
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default: the cores available)"
    )
    parser.add_argument("--no-mutants", action="store_true", help="skip the broken-runtime runs")
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument(
        "--traces",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write every attempt (virtual time, request, model, provider, outcome, wait "
        "before it, the runtime's decision) as JSON lines, one file per run",
    )
    args = parser.parse_args(argv)

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

    seed = (
        secrets.randbelow(2**31 - 1)
        if args.random_seed
        else (DEFAULT_SEED if args.seed is None else args.seed)
    )
    jobs = build_jobs(scenarios, seed, quick=args.quick, mutants=not args.no_mutants)
    if args.traces is not None:
        for job in jobs:
            job.trace_dir = str(args.traces)
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
        command=" ".join(["python -m chaos", *(sys.argv[1:] if argv is None else argv)]),
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
        delta=power.DELTA,
    )
    info["power_notes"] = power_notes(scenarios, results)
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
