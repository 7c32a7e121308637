"""The original NotDiamond SDK (0.4.12) as a contender: its own virtualenv, driven as a subprocess.

Its code never enters this project: it is pip-installed into ``.nox/nd-0.4.12`` (git-ignored) and
``original_sdk_runner.py`` runs there, printing per-request records as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmarks.scenarios import RequestRecord, Workload

REQUIREMENT: Final = "notdiamond[openai]==0.4.12"
VERSION: Final = "0.4.12"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
VENV_DIR: Final = REPO_ROOT / ".nox" / f"nd-{VERSION}"
RUNNER: Final = Path(__file__).resolve().parent / "original_sdk_runner.py"
#: An interpreter that already has the original SDK (skips creating the virtualenv).
PYTHON_ENV_VAR: Final = "BENCH_ORIGINAL_PYTHON"
INSTALL_TIMEOUT: Final = 900.0


@dataclass
class Environment:
    python: Path | None
    problem: str | None = None  # why it is unavailable


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_original(python: Path) -> bool:
    probe = "import importlib.metadata as m; print(m.version('notdiamond'))"
    try:
        found = subprocess.run(
            [str(python), "-c", probe],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tempfile.gettempdir(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0 and found.stdout.strip() == VERSION


def ensure_environment(*, install: bool = True) -> Environment:
    """An interpreter with the original SDK: ``$BENCH_ORIGINAL_PYTHON``, the cached venv, or a new one."""
    override = os.environ.get(PYTHON_ENV_VAR)
    if override:
        if _has_original(Path(override)):
            return Environment(Path(override))
        return Environment(None, f"${PYTHON_ENV_VAR}={override} has no notdiamond {VERSION}")
    python = _venv_python(VENV_DIR)
    if python.exists() and _has_original(python):
        return Environment(python)
    if not install:
        return Environment(None, f"not installed in {VENV_DIR} (installation not requested)")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV_DIR)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            REQUIREMENT,
        ],
    ]
    for step in steps:
        print(f"benchmarks: {' '.join(step[-3:])}", file=sys.stderr)
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Environment(None, f"{' '.join(step[-3:])}: {exc}")
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "WARNING" not in line]
            return Environment(
                None, f"`pip install {REQUIREMENT}` failed: " + " ".join(errors[-6:])
            )
    if not _has_original(python):
        return Environment(None, f"installed, but `notdiamond` in {VENV_DIR} is not {VERSION}")
    return Environment(python)


def run(python: Path, workload: Workload, scenario_names: list[str]) -> dict[str, Any]:
    """Run every scenario with the original SDK; per scenario, its list of ``RequestRecord``."""
    command = [
        str(python),
        str(RUNNER),
        "--requests",
        str(workload.requests),
        "--interarrival",
        str(workload.interarrival),
        "--seed",
        str(workload.seed),
    ]
    for name in scenario_names:
        command += ["--scenario", name]
    # Outside the repository, so that its notdiamond/ can never shadow the installed SDK.
    done = subprocess.run(command, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise RuntimeError(
            f"original SDK runner failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    payload: dict[str, Any] = json.loads(done.stdout)
    payload["results"] = {
        name: [RequestRecord(**r) for r in records] for name, records in payload["results"].items()
    }
    return payload
