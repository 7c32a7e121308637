"""Runs the original NotDiamond SDK (0.4.12) through the scenarios; prints JSON on stdout.

Executed by path with the interpreter of the SDK's own virtualenv (see ``original_sdk.py``), never
imported by this project. The installed ``notdiamond`` package is imported first, then the repository
root is appended to ``sys.path`` so that ``benchmarks.scenarios`` resolves while ``notdiamond`` stays
the installed 0.4.12.

    python benchmarks/original_sdk_runner.py --requests 2000 --seed 1 [--scenario outage ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import openai

import notdiamond  # the installed original SDK: imported before the repository joins sys.path

REPO_ROOT = Path(__file__).resolve().parent.parent
if Path(notdiamond.__file__).resolve().parent == REPO_ROOT / "notdiamond":
    raise SystemExit("original_sdk_runner: imported this repository's notdiamond, not the original")
sys.path.append(str(REPO_ROOT))

from benchmarks import scenarios  # noqa: E402
from benchmarks.fake_provider import MESSAGES  # noqa: E402


@contextlib.contextmanager
def original_sdk(
    primary: openai.OpenAI, secondary: openai.AzureOpenAI, clock: scenarios.VirtualClock
) -> Iterator[Callable[[], object]]:
    """The original SDK with the same settings as this library; its clients keep SDK retries on.

    It resolves ``model`` as ``<client's provider>/<model>``, so the call names the primary's bare
    model (``model="notdiamond"`` only works with weighted models there).
    """
    notdiamond.init(
        [primary, secondary],
        models=scenarios.MODELS,
        max_retries=scenarios.MAX_RETRIES,
        timeout=scenarios.TIMEOUT,
        backoff=scenarios.BACKOFF,
    )

    def call() -> object:
        return primary.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    yield call


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--interarrival", type=float, default=scenarios.Workload.interarrival)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--scenario", action="append", choices=list(scenarios.SCENARIOS))
    args = parser.parse_args(argv)
    workload = scenarios.Workload(args.requests, args.interarrival, args.seed)
    results: dict[str, Any] = {}
    for name in args.scenario or list(scenarios.SCENARIOS):
        records = scenarios.run_scenario(original_sdk, scenarios.SCENARIOS[name], workload)
        results[name] = scenarios.records_to_json(records)
    json.dump(
        {
            "notdiamond": metadata.version("notdiamond"),
            "openai": openai.__version__,
            "python": sys.version.split()[0],
            "results": results,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
