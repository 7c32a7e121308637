"""The original NotDiamond SDK (0.4.12) as a contender: its own virtualenv, driven as a subprocess.

Its code never enters this project: it is pip-installed into ``.nox/nd-0.4.12``
(git-ignored, see ``venvs.py``) and ``original_sdk_runner.py`` runs there, printing per-request
records as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from benchmarks import venvs
from benchmarks.scenarios import RequestRecord, Workload

#: An interpreter that already has the original SDK (skips creating the virtualenv).
PYTHON_ENV_VAR: Final = "BENCH_ORIGINAL_PYTHON"
PINNED: Final = venvs.Pinned("notdiamond", "0.4.12", "[openai]", PYTHON_ENV_VAR, "nd-0.4.12")
VERSION: Final = PINNED.version
RUNNER: Final = Path(__file__).resolve().parent / "original_sdk_runner.py"


def ensure_environment(*, install: bool = True) -> venvs.Environment:
    """An interpreter with the original SDK: ``$BENCH_ORIGINAL_PYTHON``, the cached venv, or a new one."""
    return venvs.ensure_environment(PINNED, install=install)


def run(python: Path, workload: Workload, scenario_names: list[str]) -> dict[str, Any]:
    """Run every scenario with the original SDK; per scenario, its list of ``RequestRecord``."""
    args = [
        "--requests",
        str(workload.requests),
        "--interarrival",
        str(workload.interarrival),
        "--seed",
        str(workload.seed),
    ]
    for name in scenario_names:
        args += ["--scenario", name]
    payload: dict[str, Any] = json.loads(venvs.run_script(python, RUNNER, args, "original SDK"))
    payload["results"] = {
        name: [RequestRecord(**r) for r in records] for name, records in payload["results"].items()
    }
    return payload
