"""A contender's own virtualenv: measurement only, its code never enters this project.

A pinned requirement is pip-installed into ``.nox/<name>`` (git-ignored) on first use, or an
interpreter that already has it is named by an environment variable; its runner script is then
executed by path with that interpreter, from outside the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT: Final = 900.0


@dataclass(frozen=True)
class Pinned:
    """A contender's distribution: ``package==version`` (with ``extras``), its venv and override."""

    package: str
    version: str
    extras: str = ""  # e.g. "[openai]"
    env_var: str = ""  # names an interpreter that already has it
    venv_name: str = ""  # directory under .nox/ (default ``<package>-<version>``)

    @property
    def requirement(self) -> str:
        return f"{self.package}{self.extras}=={self.version}"

    @property
    def venv_dir(self) -> Path:
        return REPO_ROOT / ".nox" / (self.venv_name or f"{self.package}-{self.version}")


@dataclass
class Environment:
    python: Path | None
    problem: str | None = None  # why it is unavailable


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def has_version(python: Path, pinned: Pinned) -> bool:
    probe = f"import importlib.metadata as m; print(m.version({pinned.package!r}))"
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
    return found.returncode == 0 and found.stdout.strip() == pinned.version


def ensure_environment(pinned: Pinned, *, install: bool = True) -> Environment:
    """An interpreter with ``pinned``: ``$<env_var>``, the cached venv, or a new one."""
    override = os.environ.get(pinned.env_var) if pinned.env_var else None
    if override:
        if has_version(Path(override), pinned):
            return Environment(Path(override))
        return Environment(None, f"${pinned.env_var}={override} has no {pinned.requirement}")
    venv = pinned.venv_dir
    python = venv_python(venv)
    if python.exists() and has_version(python, pinned):
        return Environment(python)
    if not install:
        return Environment(None, f"not installed in {venv} (installation not requested)")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            pinned.requirement,
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
                None, f"`pip install {pinned.requirement}` failed: " + " ".join(errors[-6:])
            )
    if not has_version(python, pinned):
        return Environment(
            None, f"installed, but {pinned.package} in {venv} is not {pinned.version}"
        )
    return Environment(python)


def start_script(python: Path, script: Path, args: list[str]) -> subprocess.Popen[str]:
    """Start ``script`` with ``python`` from outside the repository, without ``PYTHONPATH`` (so
    that nothing here can shadow the installed package); finish it with :func:`output`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(
        [str(python), str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
    )


def output(process: subprocess.Popen[str], what: str) -> str:
    """Wait for a started runner: its stdout, or RuntimeError with the end of its stderr."""
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{what} runner failed ({process.returncode}):\n{stderr[-4000:]}")
    return stdout


def run_script(python: Path, script: Path, args: list[str], what: str) -> str:
    """Run ``script`` with ``python`` (see :func:`start_script`); its stdout."""
    return output(start_script(python, script, args), what)
