"""Fleet-wide requests reaching a dead provider: shared breaker state against per-process state.

``python -m benchmarks.fleet [--quick] [--out FILE]`` (``python -m benchmarks`` runs it too and puts
a section in its report). For 1, 4 and 16 processes (``--quick``: 1 and 4), the chaos harness's
fleet runner (:func:`chaos.fleet.run_fleet`, the same one the ``fleet-outage`` scenario uses) runs
the ``fleet-outage`` scenario twice: every process on one ``notdiamond.RedisState`` (a Redis the
runner starts itself), and every process on its own in-process state. It counts the requests the
primary receives during its outage across the fleet, next to the bounds of
``chaos/checks/fleet_bounds.py`` (one shared breaker; N separate ones).

Real time, real sockets: the fleet sends about 100 calls a second in all (each process one every
``max(40 ms, N x 10 ms)``), so 16 processes do not saturate 2 cores, for a run of 5.0 s (the
primary down from 1.0 s to 4.5 s; ``--quick``: 2.6 s, down from 1.0 s to the end).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

PROCESSES: Final = {"full": (1, 4, 16), "quick": (1, 4)}
#: The whole fleet's calls per second; each process sends one every ``processes / FLEET_RATE`` s.
FLEET_RATE: Final = 100.0
#: Calls per process (at the scenario's 40 ms, the primary's outage runs from 1.0 s to the end).
PER_PROCESS: Final = {"full": 120, "quick": 60}
SCENARIO: Final = "fleet-outage"
SEED: Final = 11


def _scenario(processes: int) -> Any:
    from chaos.scenario import load_builtin

    base = load_builtin([SCENARIO])[0]
    assert base.fleet is not None
    interval = max(base.traffic.interval, processes / FLEET_RATE)
    return dataclasses.replace(
        base,
        fleet=dataclasses.replace(base.fleet, processes=processes),
        traffic=dataclasses.replace(base.traffic, interval=interval),
    )


def measure(processes: int, per_process: int, *, shared: bool, seed: int = SEED) -> dict[str, Any]:
    """One fleet run: the requests its dead primary received during the outage, and the bounds."""
    from chaos.checks.fleet_bounds import dead_primary_bound, primary_outage
    from chaos.fleet import run_fleet

    scenario = _scenario(processes)
    # the same run length for every fleet size: calls per process scale with the interval
    calls = max(1, round(per_process * 0.04 / scenario.traffic.interval))
    started = time.perf_counter()
    trace, _ = run_fleet(scenario, calls * processes, seed, shared=shared)
    wall = time.perf_counter() - started
    info = trace.fleet
    assert info is not None
    window = primary_outage(scenario, info.end)
    if window is None:
        raise RuntimeError("the fleet run ended before the primary's outage began")
    key, start, end = window
    received = [r for r in trace.http if r.key == key and start <= r.start < end]
    bound = dead_primary_bound(
        scenario, processes, end - start, sync_interval=info.sync_interval, timeout=info.timeout
    )
    ok = sum(1 for e in trace.endings if e.kind == "response")
    return {
        "processes": processes,
        "state": "shared (RedisState)" if shared else "per process",
        "interval_s": scenario.traffic.interval,
        "calls": len(trace.endings),
        "success": ok / len(trace.endings) if trace.endings else None,
        "outage_s": [start, round(end, 3)],
        "dead_primary_requests": len(received),
        "shared_bound": bound.shared,
        "separate_bound": bound.separate,
        "startup_s": round(info.startup_s, 2),
        "wall_s": round(wall, 2),
    }


def run(mode: str) -> dict[str, Any]:
    """Every fleet size, shared and per-process state; the report's ``fleet`` section."""
    started = time.perf_counter()
    rows = []
    for processes in PROCESSES[mode]:
        for shared in (True, False):
            row = measure(processes, PER_PROCESS[mode], shared=shared)
            rows.append(row)
            print(
                f"benchmarks: fleet {processes} process(es), {row['state']}: "
                f"{row['dead_primary_requests']} requests to the dead primary",
                file=sys.stderr,
            )
    return {
        "mode": mode,
        "processes": list(PROCESSES[mode]),
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def summary_lines(section: Mapping[str, Any] | None) -> list[str]:
    """The report's section (nothing when the run had no fleet benchmark)."""
    if not section:
        return []
    rows: Sequence[Mapping[str, Any]] = section["rows"]
    lines = [
        "## Fleet: requests reaching a dead provider, shared state against per-process state",
        "",
        f"The chaos harness's fleet runner on its `{SCENARIO}` scenario (real time, real sockets, "
        "a Redis the runner starts): the primary answers 503 from 1.0 s to 4.5 s of a 5.0 s run "
        "(`--quick`: to the end of a 2.6 s run, and 1 and 4 processes only); breaker: 3 failures in a row, breaks of "
        "0.15 s; `RedisState(sync_interval=0.1, timeout=0.1)`. The fleet sends about "
        f"{FLEET_RATE:g} calls/s in all (each process one every max(40 ms, N x 10 ms)). Bounds: "
        "`chaos/checks/fleet_bounds.py` (one shared breaker: its opening calls plus one probe per "
        "break; N separate breakers: N times one breaker's).",
        "",
        "| processes | state | calls | success | requests to the dead primary | one shared "
        "breaker allows | N separate allow | wall s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        success = "n/a" if r["success"] is None else f"{r['success']:.1%}"
        lines.append(
            f"| {r['processes']} | {r['state']} | {r['calls']} | {success} | "
            f"**{r['dead_primary_requests']}** | {r['shared_bound']} | {r['separate_bound']} | "
            f"{r['wall_s']:.1f} |"
        )
    lines += ["", f"Ran in {section['wall_seconds']:.0f} s.", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 and 4 processes, a shorter run")
    parser.add_argument("--out", type=Path, help="write the section's data here as JSON")
    args = parser.parse_args(argv)
    section = run("quick" if args.quick else "full")
    print("\n".join(summary_lines(section)))
    if args.out:
        args.out.write_text(json.dumps(section, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
