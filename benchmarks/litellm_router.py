"""LiteLLM's Router as a contender: its own virtualenv, driven as a subprocess, in real time.

Its code never enters this project: ``litellm`` (pinned) is pip-installed into
``.nox/litellm-<version>`` (git-ignored, see ``venvs.py``) and ``litellm_runner.py`` runs there
against a loopback server serving the scenarios' faults, printing per-request records as JSON.
Two configurations: LiteLLM's default cooldowns, and cooldowns tuned for failover
(``allowed_fails=3, cooldown_time=10``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from benchmarks import venvs
from benchmarks.contenders import PLAIN_SDK, THIS_LIBRARY, THIS_LIBRARY_RECOMMENDED
from benchmarks.scenarios import RequestRecord, Workload

#: An interpreter that already has this LiteLLM (skips creating the virtualenv).
PYTHON_ENV_VAR: Final = "BENCH_LITELLM_PYTHON"
#: Pinned: an exact, known release (LiteLLM has had compromised releases on PyPI; never float).
PINNED: Final = venvs.Pinned("litellm", "1.110.2", "", PYTHON_ENV_VAR)
RUNNER: Final = Path(__file__).resolve().parent / "litellm_runner.py"
#: The runner's configurations, as labelled in the report.
LABELS: Final = {
    "default": f"LiteLLM {PINNED.version} Router (default cooldowns), real time",
    "tuned": f"LiteLLM {PINNED.version} Router (allowed_fails=3, cooldown_time=10), real time",
}
#: This library's rows under the same real-time conditions (``realtime_runner.py``).
OUR_LABELS: Final = {
    "plain": f"{PLAIN_SDK}, real time",
    "default": f"{THIS_LIBRARY}, real time",
    "recommended": f"{THIS_LIBRARY_RECOMMENDED}, real time",
}
#: Real time: logical requests per scenario (one every 0.5 s, so 100 s of traffic), all runs at once.
REQUESTS: Final = 200


def ensure_environment(*, install: bool = True) -> venvs.Environment:
    return venvs.ensure_environment(PINNED, install=install)


def run(python: Path, workload: Workload, scenario_names: list[str]) -> dict[str, Any]:
    """Every scenario with both configurations, and this library's two rows under the same real-time
    conditions at the same time (``realtime_runner.py``, in this interpreter);
    ``results[label][scenario]``: ``RequestRecord``s."""
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
    ours = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.realtime_runner", *args]
        + [f"--config={c}" for c in OUR_LABELS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=venvs.REPO_ROOT,
    )
    theirs = venvs.start_script(python, RUNNER, [*args, *(f"--config={c}" for c in LABELS)])
    payload: dict[str, Any] = json.loads(venvs.output(theirs, "LiteLLM"))
    this: dict[str, Any] = json.loads(venvs.output(ours, "this library's real-time"))
    labels = {**LABELS, **{f"nd-{c}": label for c, label in OUR_LABELS.items()}}
    found = {
        **payload["results"],
        **{f"nd-{c}": by_scenario for c, by_scenario in this["results"].items()},
    }
    payload["results"] = {
        labels[config]: {
            name: [RequestRecord(**r) for r in records] for name, records in by_scenario.items()
        }
        for config, by_scenario in found.items()
    }
    payload["this_library_options"] = this["options"]
    return payload
