"""The package as a user gets it: ``pip install "<this checkout>[chaos]"`` into a fresh virtualenv,
then, from a directory outside the checkout, the example application's own tests (which use only
the pytest plugin's fixture) and the harness's command line.

Needs the package index (PyPI, or the local mirror pip is configured with) for the dependencies
and hatchling; pip's cache makes repeated runs fast (about 15-30 s here, mostly unpacking numpy,
scipy and matplotlib). Without it the install fails and this test says so. Deselect with
``-m "not install"``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.install

#: Variables of this test run that would make the fresh environment use the checkout instead of
#: what was installed (PYTHONPATH), or change pytest's behaviour there.
_SCRUBBED = (
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTEST_CURRENT_TEST",
)


@dataclass(frozen=True)
class Installed:
    python: Path
    #: A copy of examples/, outside the checkout.
    examples: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            cwd=self.examples,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _pip_can_target_other_pythons() -> bool:
    """pip >= 22.3 installs into another environment (``--python``): no pip in the new venv."""
    try:
        import pip
    except ImportError:
        return False
    major, minor = (int(part) for part in pip.__version__.split(".")[:2])
    return (major, minor) >= (22, 3)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env_dir = base / "venv"
    outer_pip = _pip_can_target_other_pythons()
    venv.EnvBuilder(with_pip=not outer_pip, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip = (
        [sys.executable, "-m", "pip", "--python", str(python)]
        if outer_pip
        else [str(python), "-m", "pip"]
    )
    major = int(openai.__version__.split(".", 1)[0])
    command = [
        *pip,
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # the few modules the tests import compile when first imported
        f"{ROOT}[chaos]",
        # the SDK major this test run uses: CI installs and runs the examples under both
        f"openai>={major},<{major + 1}",
        "pytest",
    ]
    done = subprocess.run(
        command, env=env, cwd=base, capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        pytest.fail(
            f"pip install of this checkout into a fresh virtualenv failed (exit {done.returncode}). "
            "This test needs the package index (network access to PyPI, or pip's configured "
            f"mirror) for the dependencies and hatchling. pip said:\n{tail}",
            pytrace=False,
        )
    examples = shutil.copytree(
        ROOT / "examples", base / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    return Installed(python, examples, env)


def test_the_installed_package_is_what_runs_and_the_harness_has_no_top_level_name(
    installed: Installed,
) -> None:
    done = installed.run(
        "-c",
        "import importlib.util, notdiamond, notdiamond.chaos, notdiamond_pytest\n"
        "print(notdiamond.__file__)\n"
        "print(notdiamond.chaos.__file__)\n"
        "print(notdiamond_pytest.__file__)\n"
        "print(importlib.util.find_spec('chaos'))\n",
    )
    assert done.returncode == 0, done.stderr
    *paths, chaos_spec = done.stdout.split()
    site = installed.python.parent.parent
    assert all(Path(p).is_relative_to(site) for p in paths), paths
    assert chaos_spec == "None"  # no generic top-level `chaos` module in a user's environment


def test_the_example_applications_tests_pass_from_another_directory(
    installed: Installed,
) -> None:
    done = installed.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "support_bot")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "2 passed" in output, output


def test_the_harness_runs_from_the_installed_package(installed: Installed) -> None:
    done = installed.run("-m", "notdiamond.chaos", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert "--scenario" in done.stdout


def test_the_harness_replays_the_example_applications_own_setup(installed: Installed) -> None:
    """``--init`` from outside the checkout: the application's own setup(), the built-in faults,
    and the report in ./chaos-report (the default away from this repository)."""
    done = installed.run(
        "-m", "notdiamond.chaos", "--init", "support_bot.llm:setup", "--quick", timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (installed.examples / "chaos-report" / "summary.md").read_text()
    assert "| outage-openai-gpt-4o | 200 | 100.00%" in summary, summary
    assert "azure/gpt-4o" in summary, summary
