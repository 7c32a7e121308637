"""``python -m benchmarks.rows``: a few rows of the comparison, in virtual time, printed; no report.

For tuning one contender against a few scenarios without the whole run (which writes the report and
takes minutes): the same driver, scenarios, seeds and statistics as ``python -m benchmarks``, so a
row printed here is the row the full run reports (for the in-process contenders; the original SDK
and LiteLLM run only in the full run, real-time rows with ``python -m benchmarks.realtime_runner
--scenario NAME --config NAME``).

    python -m benchmarks.rows --scenario flaky_5xx --scenario slow --contender plain --contender recommended
"""

from __future__ import annotations

import argparse
from typing import Final

from benchmarks import report
from benchmarks.contenders import IN_PROCESS, PLAIN_SDK, THIS_LIBRARY, THIS_LIBRARY_RECOMMENDED
from benchmarks.scenarios import SCENARIOS, Workload, run_scenario

#: Short names for the in-process contenders.
CONTENDERS: Final = {
    "plain": PLAIN_SDK,
    "tenacity": "tenacity loop (cookbook)",
    "default": THIS_LIBRARY,
    "recommended": THIS_LIBRARY_RECOMMENDED,
}


def row(scenario: str, contender: str, workload: Workload) -> str:
    """One line: the statistics the report's scenario tables show."""
    label = CONTENDERS[contender]
    stats = report.scenario_stats(run_scenario(IN_PROCESS[label], SCENARIOS[scenario], workload))
    return (
        f"{scenario:<10} {contender:<11} success {stats['success_rate']:7.2%}  "
        f"p50 {stats['latency_p50_s']:6.2f} s  p99 {stats['latency_p99_s']:6.2f} s  "
        f"HTTP/request {stats['amplification_mean']:.2f} (max {stats['amplification_max']})  "
        f"to a dead model {stats['outage_requests_total']}  "
        f"waiting {stats['waiting_mean_s']:.2f} s/request"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rows", description=__doc__)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    parser.add_argument("--contender", action="append", choices=list(CONTENDERS))
    parser.add_argument("--requests", type=int, default=Workload.requests)
    parser.add_argument("--seed", type=int, default=Workload.seed)
    args = parser.parse_args(argv)
    workload = Workload(requests=args.requests, seed=args.seed)
    for scenario in args.scenario or list(SCENARIOS):
        for contender in args.contender or list(CONTENDERS):
            print(row(scenario, contender, workload), flush=True)


if __name__ == "__main__":
    main()
