"""Where a run writes its report when ``--out`` is not given.

The committed reports (``reports/chaos/`` of this repository) are rewritten only by the suite's
own run inside this repository. Any other run writes ``./chaos-report/`` in the directory it was
started from.

"The suite's own run inside this repository" means all of:

- no ``--init`` (a run of someone's own configuration is never the suite's report);
- the harness was imported from a checkout: the directory above the harness's package holds a
  ``pyproject.toml`` whose project is ``notdiamond`` and a ``reports/chaos/`` directory (an
  installed wheel puts the harness at ``site-packages/notdiamond/chaos``, whose parent holds
  neither);
- the current directory is that checkout's root (``nox -s chaos``, ``python -m chaos`` there).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

#: Where a run outside this repository (or any ``--init`` run) writes its report.
USER_REPORT_DIR: Final = Path("chaos-report")
#: The committed report directory, relative to the checkout's root.
SUITE_REPORT_DIR: Final = Path("reports") / "chaos"

_PROJECT_NAME = re.compile(r'^name\s*=\s*"notdiamond"\s*$', re.MULTILINE)


def checkout_root(harness_dir: Path | None = None) -> Path | None:
    """The root of the notdiamond checkout the harness was imported from, or ``None`` (e.g. the
    harness runs from an installed wheel)."""
    here = (harness_dir or Path(__file__).parent).resolve()
    root = here.parent
    pyproject = root / "pyproject.toml"
    if not (root / SUITE_REPORT_DIR).is_dir() or not pyproject.is_file():
        return None
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if _PROJECT_NAME.search(text) else None


def is_suite_run(*, init: bool, cwd: Path | None = None, harness_dir: Path | None = None) -> bool:
    """Whether this run is the suite's own run inside this repository (see the module doc)."""
    if init:
        return False
    root = checkout_root(harness_dir)
    return root is not None and (cwd or Path.cwd()).resolve() == root


def default_out(*, init: bool, cwd: Path | None = None, harness_dir: Path | None = None) -> Path:
    """``reports/chaos`` for the suite's own run inside this repository, else ``./chaos-report``."""
    if is_suite_run(init=init, cwd=cwd, harness_dir=harness_dir):
        return SUITE_REPORT_DIR
    return USER_REPORT_DIR
