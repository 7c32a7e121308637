"""``python -m chaos --init MODULE:FUNCTION``: the application's own configuration under faults.

The example application (examples/support_bot) and small applications written here are run the
way a user runs them; the report's figures, findings and checks are read back from results.json.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import notdiamond

pytest.importorskip("scipy")

from chaos.__main__ import main
from chaos.outdir import SUITE_REPORT_DIR, USER_REPORT_DIR, checkout_root, default_out
from chaos.user_config import SetupError, capture

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


class NetworkGuard:
    """Every attempt to resolve a name or open a connection, refused and recorded."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def refuse(self, what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            self.attempts.append(f"{what}{args[1:] if what == 'connect' else args}")
            raise OSError(f"chaos test: no network ({what})")

        return refused


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> NetworkGuard:
    guard = NetworkGuard()
    monkeypatch.setattr(socket, "getaddrinfo", guard.refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", guard.refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", guard.refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", guard.refuse("connect_ex"))
    return guard


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory to run from (as the user would, ``cd myapp && python -m ...``); sys.path and
    sys.modules are restored afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("chaosapp_"):
            del sys.modules[name]


def write_app(directory: Path, name: str, body: str) -> str:
    """A module ``chaosapp_<name>`` in ``directory``; returns its import name."""
    module = f"chaosapp_{name}"
    header = (
        "import notdiamond\nfrom openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI\n"
    )
    (directory / f"{module}.py").write_text(header + textwrap.dedent(body), encoding="utf-8")
    return module


def results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return data


def scenario(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["scenarios"] if s["name"] == name)


def verdicts(s: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["verdict"] for c in s["checks"]}


# -- the example application ------------------------------------------------------------------
@pytest.fixture(scope="module")
def support_bot(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[int, dict[str, Any], Path, list[str]]:
    """``--init support_bot.llm:setup`` run from examples/ (quick sizes), no network allowed."""
    out = tmp_path_factory.mktemp("support_bot")
    mp = pytest.MonkeyPatch()
    guard = NetworkGuard()
    try:
        mp.chdir(EXAMPLES)
        mp.setattr(sys, "path", list(sys.path))
        mp.setattr(socket, "getaddrinfo", guard.refuse("getaddrinfo"))
        mp.setattr(socket, "create_connection", guard.refuse("create_connection"))
        mp.setattr(socket.socket, "connect", guard.refuse("connect"))
        code = main(
            ["--init", "support_bot.llm:setup", "--quick", "--seed", "5", "--out", str(out)]
        )
    finally:
        mp.undo()
    return code, results(out), out, guard.attempts


def test_support_bot_runs_every_builtin_scenario(support_bot: Any) -> None:
    code, data, out, network = support_bot
    assert code == 0
    assert network == []
    assert [s["name"] for s in data["scenarios"]] == [
        "healthy",
        "outage-openai-gpt-4o",
        "outage-azure-gpt-4o",
        "flaky-5xx",
        "rate-limits",
        "slow-primary",
        "storm",
    ]
    for s in data["scenarios"]:
        assert s["error"] is None
        assert s["n"] == 200
        assert "fail" not in verdicts(s).values()
        assert {"calls", "success", "p50_s", "p99_s", "http_per_call", "wait_per_call_s"} <= set(
            s["figures"]
        )
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert (
        "| scenario | calls | success | p50 | p99 | HTTP requests / call | waiting / call |"
        in summary
    )
    assert (out / "time-to-outcome.png").stat().st_size > 0


def test_the_plain_sdk_meets_the_same_faults_beside_the_configuration(support_bot: Any) -> None:
    _, data, out, _ = support_bot
    healthy = scenario(data, "healthy")["plain_sdk"]
    assert healthy["calls"] == 200
    assert healthy["success"] == healthy["notdiamond_success"] == 1.0
    # one client of the main model, without fallback: an outage of it is the plain SDK's failures
    outage = scenario(data, "outage-openai-gpt-4o")["plain_sdk"]
    assert outage["success"] < 0.8
    assert outage["notdiamond_success"] == 1.0
    # the other model is not the plain client's: its outage costs it nothing
    assert scenario(data, "outage-azure-gpt-4o")["plain_sdk"]["success"] == 1.0
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert f"| {100 * outage['success']:.2f}% | {outage['p99_s']:.2f} s |" in summary


def test_support_bot_configuration_is_captured_exactly(support_bot: Any) -> None:
    _, data, _, _ = support_bot
    assert data["configuration"] == {
        "models": {"openai/gpt-4o": 0.8, "azure/gpt-4o": 0.2},
        "max_retries": {"openai/gpt-4o": 2, "azure/gpt-4o": 1},
        "timeout": {"openai/gpt-4o": 10.0, "azure/gpt-4o": 8.0},
        "backoff": 0.5,
        "circuit_breaker": True,
    }
    assert [(c["kind"], c["provider"], c["is_async"]) for c in data["clients"]] == [
        ("OpenAI", "openai", False),
        ("AzureOpenAI", "azure", False),
    ]
    # the breaker is on: its own check judges, the plain policy's checks do not
    outage = scenario(data, "outage-openai-gpt-4o")
    assert verdicts(outage) == {
        "conservation": "pass",
        "attempt_fields": "pass",
        "breaker_reference": "pass",
    }


def test_an_outage_of_the_primary_falls_back_and_the_breaker_skips_it(support_bot: Any) -> None:
    _, data, _, _ = support_bot
    outage = scenario(data, "outage-openai-gpt-4o")
    m = outage["measures"]
    assert outage["figures"]["success"] == 1.0
    assert m["calls_in_outage"] >= 90  # t = 40 s .. 140 s at one call per second
    # the calls that started on the dead primary all fell back ...
    assert m["calls_started_on_down_model"] >= 1
    assert m["calls_that_stayed_on_down_model"] == 0
    assert m["fallback_cost_mean_s"] > 0
    # ... and the breaker kept most calls away from it
    assert m["calls_that_reached_down_model"] < m["calls_in_outage"] / 4
    texts = [f["text"] for f in outage["findings"]]
    assert any(
        "With the circuit breaker" in t and f"of the {int(m['calls_in_outage'])} calls" in t
        for t in texts
    )


def test_findings_rest_on_measured_figures(support_bot: Any) -> None:
    _, data, _, _ = support_bot
    slow = scenario(data, "slow-primary")
    assert slow["figures"]["p99_s"] > 10.0
    advice = [f["text"] for f in slow["findings"] if f["level"] == "advice"]
    assert any("smaller timeout for openai/gpt-4o" in t and "deadline=" in t for t in advice)
    assert f"p99 {slow['figures']['p99_s']:.1f} s" in advice[0]
    storm = scenario(data, "storm")
    assert storm["figures"]["success"] < 0.95
    assert storm["figures"]["http_per_call"] > 1.0
    flaky = scenario(data, "flaky-5xx")
    assert [f["level"] for f in flaky["findings"]] == ["ok"]
    healthy = scenario(data, "healthy")
    assert healthy["figures"]["success"] == 1.0
    assert healthy["figures"]["http_per_call"] == 1.0
    # findings quote the healthy baseline next to the p99 they compare with
    p99 = healthy["figures"]["p99_s"]
    assert (f"(healthy: {p99:.1f} s)" if p99 >= 0.95 else f"(healthy: {p99:.2f} s)") in advice[0]


def test_the_cli_runs_from_the_application_directory(tmp_path: Path) -> None:
    """The real command line, as a user runs it next to their package."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos",
            "--init",
            "support_bot.llm:setup",
            "--quick",
            "--scenario",
            "storm",
            "--no-plots",
            "--out",
            str(tmp_path),
        ],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = results(tmp_path)
    assert [s["name"] for s in data["scenarios"]] == ["storm"]
    assert data["run"]["command"].startswith("python -m chaos --init support_bot.llm:setup")


def test_the_installed_layout_runs_from_another_directory(tmp_path: Path) -> None:
    """The wheel's layout (the harness as notdiamond/chaos, as hatch's force-include maps it),
    run from an application's directory: ``python -m notdiamond.chaos --init`` writes
    ./chaos-report there."""
    import shutil

    site, app = tmp_path / "site", tmp_path / "app"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "notdiamond", site / "notdiamond", ignore=ignore)
    shutil.copytree(ROOT / "chaos", site / "notdiamond" / "chaos", ignore=ignore)
    shutil.copytree(EXAMPLES / "support_bot", app / "support_bot", ignore=ignore)
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "notdiamond.chaos",
            "--init",
            "support_bot.llm:setup",
            "--quick",
            "--scenario",
            "outage",
        ],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = results(app / "chaos-report")
    assert data["run"]["command"].startswith("python -m notdiamond.chaos --init")
    assert [s["name"] for s in data["scenarios"]] == ["outage-openai-gpt-4o", "outage-azure-gpt-4o"]
    assert (app / "chaos-report" / "summary.md").is_file()


# -- findings of a configuration without a breaker ----------------------------------------------
def test_outage_cost_without_a_breaker_is_advice(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "plain",
        """
        def setup():
            clients = [OpenAI(api_key="k"), AzureOpenAI(api_key="k", azure_endpoint="https://x.invalid", api_version="2024-06-01")]
            return notdiamond.init(clients, models=["openai/gpt-4o", "azure/gpt-4o"], max_retries=3, backoff=2.0)
        """,
    )
    code = main(
        [
            "--init",
            f"{module}:setup",
            "--quick",
            "--scenario",
            "outage",
            "--out",
            "rep",
            "--no-plots",
        ]
    )
    assert code == 0
    data = results(app_dir / "rep")
    assert [s["name"] for s in data["scenarios"]] == ["outage-openai-gpt-4o", "outage-azure-gpt-4o"]
    primary = scenario(data, "outage-openai-gpt-4o")
    # three attempts on the dead primary, 2 s and 4 s apart: 6 s before the fallback
    assert primary["measures"]["fallback_cost_mean_s"] == pytest.approx(6.0, abs=0.01)
    assert (
        primary["measures"]["calls_started_on_down_model"] == primary["measures"]["calls_in_outage"]
    )
    advice = [f["text"] for f in primary["findings"] if f["level"] == "advice"]
    assert len(advice) == 1
    assert (
        "An outage of openai/gpt-4o costs each call that starts on it 6.0 s before it falls back"
        in advice[0]
    )
    assert "consider circuit_breaker= or a smaller backoff (now 2)" in advice[0]
    # no health strategy: the plain policy's checks judge, and pass
    assert verdicts(primary) == {
        "conservation": "pass",
        "attempt_fields": "pass",
        "attempts_per_policy": "pass",
        "backoff_waits": "pass",
        "final_error": "not exercised",
        "fallback_order": "pass",
    }
    # the fallback's outage: every call starts on the healthy primary, so no cost is claimed
    last = scenario(data, "outage-azure-gpt-4o")
    assert last["figures"]["success"] == 1.0
    assert last["measures"]["calls_started_on_down_model"] == 0
    assert [f["level"] for f in last["findings"]] == ["ok"]
    assert "none of the" in last["findings"][0]["text"]


def test_workers_spread_the_scenarios_and_change_nothing_else(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "workers",
        """
        def setup():
            clients = [OpenAI(api_key="k"), AzureOpenAI(api_key="k", azure_endpoint="https://x.invalid", api_version="2024-06-01")]
            return notdiamond.init(clients, models={"openai/gpt-4o": 0.7, "azure/gpt-4o": 0.3}, max_retries=2)
        """,
    )
    base = ["--init", f"{module}:setup", "--quick", "--no-plots", "--seed", "9"]
    assert main([*base, "--out", "one"]) == 0
    assert main([*base, "--out", "two", "--workers", "2"]) == 0
    one, two = results(app_dir / "one"), results(app_dir / "two")
    assert [s["name"] for s in one["scenarios"]] == [s["name"] for s in two["scenarios"]]
    for a, b in zip(one["scenarios"], two["scenarios"], strict=True):
        assert (a["figures"], a["measures"], a["findings"]) == (
            b["figures"],
            b["measures"],
            b["findings"],
        )
        assert verdicts(a) == verdicts(b)


def test_flaky_5xx_advice_adds_a_fallback_only_where_there_is_none(app_dir: Path) -> None:
    from chaos.findings import findings_for
    from chaos.user_scenarios import fault_scenarios

    module = write_app(
        app_dir,
        "flaky_advice",
        """
        def one():
            return notdiamond.init(OpenAI(api_key="k"), models=["openai/gpt-4o"])

        def two():
            return notdiamond.init(OpenAI(api_key="k"), models={"openai/gpt-4o": 0.7, "openai/gpt-4o-mini": 0.3}, max_retries=2)
        """,
    )
    figures = {"success": 0.995, "p99_s": 1.0, "wait_per_call_s": 0.0, "http_per_call": 1.1}
    advice = {}
    for name in ("one", "two"):
        captured = capture(f"{module}:{name}")
        (flaky,) = [u for u in fault_scenarios(captured, quick=True) if u.kind == "flaky-5xx"]
        (advice[name],) = [
            f.text for f in findings_for(flaky, figures, {}, captured) if f.level == "advice"
        ]
    assert advice["one"].endswith("raise max_retries or add a fallback model.")
    assert advice["two"].endswith(
        "raise max_retries (now 2 attempt(s) per model before it falls back)."
    )


def test_a_failed_check_makes_the_exit_status_1(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A runtime whose backoff is 10% too long (the suite's mutant) fails the user's run too."""
    from chaos.mutants import MUTANTS

    module = write_app(
        app_dir,
        "broken_runtime",
        """
        def setup():
            return notdiamond.init(OpenAI(api_key="k"), models=["openai/gpt-4o", "openai/gpt-4o-mini"], max_retries=3)
        """,
    )
    args = [
        "--init",
        f"{module}:setup",
        "--quick",
        "--scenario",
        "flaky-5xx",
        "--out",
        "rep",
        "--no-plots",
    ]
    with MUTANTS["backoff_off"].apply():
        assert main(args) == 1
    assert "FAILED flaky-5xx / backoff_waits" in capsys.readouterr().err
    assert verdicts(scenario(results(app_dir / "rep"), "flaky-5xx"))["backoff_waits"] == "fail"
    assert main(args) == 0  # the same run on the real runtime


def test_a_run_that_crashes_is_reported_with_its_traceback_and_exit_status_1(
    app_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import chaos.user_run

    module = write_app(
        app_dir,
        "crashing_run",
        """
        def setup():
            return notdiamond.init(OpenAI(api_key="k"), models=["openai/gpt-4o"])
        """,
    )

    def crashing_driver(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the driver broke")

    monkeypatch.setitem(chaos.user_run.DRIVERS, "sync", crashing_driver)
    argv = ["--init", f"{module}:setup", "--quick", "--scenario", "storm", "--out", "rep"]
    assert main([*argv, "--no-plots"]) == 1
    assert "CRASHED storm:\nTraceback" in capsys.readouterr().err
    (storm,) = results(app_dir / "rep")["scenarios"]
    assert "RuntimeError: the driver broke" in storm["error"]
    assert storm["checks"] == []


def test_sdk_retries_run_with_the_applications_client_max_retries(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "sdk_retries",
        """
        def setup():
            clients = [OpenAI(api_key="k", max_retries=4), AzureOpenAI(api_key="k", azure_endpoint="https://x.invalid", api_version="2024-06-01", max_retries=0)]
            return notdiamond.init(clients, models=["openai/gpt-4o", "azure/gpt-4o"], sdk_retries=True)
        """,
    )
    args = [
        "--init",
        f"{module}:setup",
        "--quick",
        "--scenario",
        "outage",
        "--out",
        "rep",
        "--no-plots",
    ]
    assert main(args) == 0
    data = results(app_dir / "rep")
    assert data["configuration"]["sdk_retries"] is True
    primary = scenario(data, "outage-openai-gpt-4o")
    m = primary["measures"]
    # one notdiamond attempt on the dead primary, which the SDK itself sends 1 + 4 times (the last
    # call of the window may see the outage end during the SDK's own waits)
    started = m["calls_started_on_down_model"]
    assert started > 0
    assert 5 * (started - 1) < m["requests_to_down_model"] <= 5 * started
    # the policy checks replay notdiamond's own attempts: with SDK retries they do not judge
    assert set(verdicts(primary)) == {"conservation", "attempt_fields"}
    fallback = scenario(data, "outage-azure-gpt-4o")
    assert fallback["figures"]["success"] == 1.0


# -- no request leaves the machine -----------------------------------------------------------
def test_no_request_leaves_the_machine_whatever_the_base_url(
    app_dir: Path, no_network: NetworkGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_app(
        app_dir,
        "unreachable",
        """
        def clients():
            return [
                OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=2.0),
                AzureOpenAI(api_key="k", azure_endpoint="https://chaos-must-not-connect.invalid",
                            api_version="2024-06-01", max_retries=0, timeout=2.0),
            ]

        def setup():
            return notdiamond.init(clients(), models=["openai/gpt-4o", "azure/gpt-4o"], max_retries=2, backoff=0.5)
        """,
    )
    import importlib

    sys.path.insert(0, str(app_dir))
    app = importlib.import_module(module)
    # the application's own clients cannot reach anything: a call through one fails
    for client in app.clients():
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
    assert len(no_network.attempts) >= 2
    no_network.attempts.clear()

    code = main(
        [
            "--init",
            f"{module}:setup",
            "--quick",
            "--scenario",
            "flaky-5xx",
            "--out",
            "rep",
            "--no-plots",
        ]
    )
    assert code == 0
    assert no_network.attempts == []
    data = results(app_dir / "rep")
    flaky = scenario(data, "flaky-5xx")
    assert flaky["figures"]["success"] == 1.0
    assert flaky["figures"]["http_per_call"] > 1.0  # the fake providers answered, faults included
    assert {c["host"] for c in data["clients"]} == {"127.0.0.1", "chaos-must-not-connect.invalid"}


# -- async clients ----------------------------------------------------------------------------
def test_async_clients_run_on_virtual_time_with_the_hedge_checks(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "hedged",
        """
        def setup():
            clients = [AsyncOpenAI(api_key="k"), AsyncAzureOpenAI(api_key="k", azure_endpoint="https://x.invalid", api_version="2024-06-01")]
            return notdiamond.init(clients, models=["openai/gpt-4o", "azure/gpt-4o"], timeout=5.0,
                                   hedge=notdiamond.Hedge(delay=2.0))
        """,
    )
    code = main(
        [
            "--init",
            f"{module}:setup",
            "--quick",
            "--scenario",
            "slow-primary",
            "--out",
            "rep",
            "--no-plots",
        ]
    )
    assert code == 0
    data = results(app_dir / "rep")
    assert data["clients"][0]["is_async"] is True
    assert data["configuration"]["hedge"]["delay"] == 2.0
    slow = scenario(data, "slow-primary")
    assert verdicts(slow) == {
        "attempt_fields": "pass",
        "hedge_rate": "pass",
        "hedge_latency": "pass",
        "hedge_losers_cancelled": "pass",
    }
    # hedging keeps the slow primary's calls near the 2 s delay plus the fallback's latency
    assert slow["figures"]["p99_s"] < 4.0


def test_hedge_true_or_false_is_captured_as_init_reads_it(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "hedge_switch",
        """
        def clients():
            return [AsyncOpenAI(api_key="k"), AsyncAzureOpenAI(api_key="k", azure_endpoint="https://x.invalid", api_version="2024-06-01")]

        def on():
            return notdiamond.init(clients(), models=["openai/gpt-4o", "azure/gpt-4o"], hedge=True)

        def off():
            return notdiamond.init(clients(), models=["openai/gpt-4o", "azure/gpt-4o"], hedge=False)
        """,
    )
    assert capture(f"{module}:on").config["hedge"] == {}  # True: notdiamond.Hedge()'s defaults
    assert "hedge" not in capture(f"{module}:off").config
    argv = ["--init", f"{module}:on", "--quick", "--scenario", "slow-primary", "--out", "rep"]
    code = main([*argv, "--no-plots"])
    assert code == 0
    assert results(app_dir / "rep")["configuration"]["hedge"] == {}


def test_an_application_that_streams_gets_the_stalled_streams_scenario(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "streams",
        """
        def setup():
            clients = [AsyncOpenAI(api_key="k"), AsyncAzureOpenAI(api_key="k", azure_endpoint="https://x.invalid", api_version="2024-06-01")]
            return notdiamond.init(clients, models=["openai/gpt-4o", "azure/gpt-4o"], first_chunk_timeout=2.0)
        """,
    )
    args = ["--init", f"{module}:setup", "--quick", "--scenario", "stalled-streams", "--out", "rep"]
    assert main([*args, "--no-plots"]) == 0
    streams = scenario(results(app_dir / "rep"), "stalled-streams")
    assert verdicts(streams) == {"stream_first_chunk": "pass", "stream_break_after_first": "pass"}
    assert streams["measures"]["stalls_per_call"] > 0.1
    assert streams["measures"]["broken_after_first_chunk"] > 0
    # a stall is cut at the 2 s limit and the call falls back (max_retries=1): async clients race
    # the first chunk against the limit on the virtual clock
    assert streams["figures"]["p99_s"] < 4.0
    assert "stall beyond its 2 s first_chunk_timeout" in streams["findings"][0]["text"]


# -- scenario files without config -------------------------------------------------------------
def test_a_scenario_file_without_config_runs_the_applications_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = {
        "description": "the primary fails half its answers",
        "providers": {
            "openai/gpt-4o": {"latency": 0.3, "errors": {"500": 0.5}},
            "azure/gpt-4o": {"latency": 0.4},
        },
        "traffic": {"n": 80, "quick_n": 80, "interval": 1.0},
    }
    path = tmp_path / "half-broken.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    traces = tmp_path / "traces"
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = main(
        [
            "--init",
            "support_bot.llm:setup",
            "--quick",
            "--scenario",
            str(path),
            "--out",
            str(tmp_path / "rep"),
            "--no-plots",
            "--traces",
            str(traces),
        ]
    )
    assert code == 0
    data = results(tmp_path / "rep")
    (only,) = data["scenarios"]
    assert (only["name"], only["kind"], only["n"]) == ("half-broken", "file", 80)
    # the application's breaker is on: its check judges the file's run
    assert verdicts(only)["breaker_reference"] == "pass"
    # every attempt carried the application's per-model timeout
    sent = [json.loads(line) for line in (traces / "half-broken.jsonl").read_text().splitlines()]
    assert {(a["model"], a["sent_timeout"]) for a in sent} == {
        ("openai/gpt-4o", 10.0),
        ("azure/gpt-4o", 8.0),
    }


def test_a_scenario_file_must_cover_the_applications_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"providers": {"openai/gpt-4o": {}}}), encoding="utf-8")
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = main(
        ["--init", "support_bot.llm:setup", "--scenario", str(path), "--out", str(tmp_path / "r")]
    )
    assert code == 2
    assert "no fault model for ['azure/gpt-4o']" in capsys.readouterr().err


# -- refusals -----------------------------------------------------------------------------------
REFUSALS = {
    "returns_none": (
        """
        def setup():
            notdiamond.init(OpenAI(api_key="k"), models=["openai/gpt-4o"])
        """,
        "returned None, not a notdiamond.RetryManager. End the function with `return notdiamond.init(...)`",
    ),
    "raises": (
        """
        def setup():
            raise RuntimeError("the vault is sealed")
        """,
        "raised RuntimeError while running: the vault is sealed",
    ),
    "built_by_the_original_constructors": (
        """
        CLIENT = OpenAI(api_key="k")

        def setup():
            wrapper = notdiamond.RetryWrapper(CLIENT, ["openai/gpt-4o"], 1, 60.0, None, None, 2.0)
            return notdiamond.RetryManager(["openai/gpt-4o"], [wrapper])
        """,
        "returned a RetryManager that notdiamond.init did not build while the harness imported "
        "and ran it",
    ),
    "init_refuses": (
        """
        def setup():
            return notdiamond.init(OpenAI(api_key="k"), models=["gpt-4o"])
        """,
        "raised ValueError while running",
    ),
    "not_callable": ("setup = 3\n", "'setup' is a int, not a function"),
    "missing": ("def other():\n    pass\n", "has no 'setup'"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unusable_setups_are_refused_naming_the_fix(
    case: str, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, message = REFUSALS[case]
    module = write_app(app_dir, case, body)
    assert main(["--init", f"{module}:setup", "--out", "rep"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (app_dir / "rep").exists()  # nothing ran, nothing written
    client = getattr(sys.modules.get(module), "CLIENT", None)
    if client is not None:  # the manager the harness refused was closed: the client is restored
        assert type(client) is openai.OpenAI


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("support_bot.llm", "give MODULE:FUNCTION"),
        ("no_such_package_here.llm:setup", "no module 'no_such_package_here' importable from"),
        ("support_bot/llm.py:setup", "not a file path: run from the directory that holds your"),
        ("./support_bot/llm.py:setup", "give --init support_bot.llm:setup."),
        ("llm.py:make", "give --init llm:make."),
    ],
)
def test_bad_targets_are_refused(
    target: str, message: str, app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--init", target]) == 2
    assert message in capsys.readouterr().err


def test_every_manager_built_during_setup_is_closed(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "closing",
        """
        BUILT = []

        def setup():
            client = OpenAI(api_key="k")
            BUILT.append(notdiamond.init(client, models=["openai/gpt-4o"]))
            manager = notdiamond.init(client, models=["openai/gpt-4o", "openai/gpt-4o-mini"], max_retries=2)
            BUILT.append(manager)
            return manager

        def failing():
            BUILT.append(notdiamond.init(OpenAI(api_key="k"), models=["openai/gpt-4o"]))
            raise RuntimeError("after init")
        """,
    )
    # a module whose import builds a manager, then fails
    importing = write_app(
        app_dir,
        "import_fails",
        """
        import chaosapp_closing

        chaosapp_closing.BUILT.append(notdiamond.init(OpenAI(api_key="k"), models=["openai/gpt-4o"]))
        raise ImportError("a missing setting")
        """,
    )
    captured = capture(f"{module}:setup")
    assert captured.config == {"models": ["openai/gpt-4o", "openai/gpt-4o-mini"], "max_retries": 2}
    with pytest.raises(SetupError, match="after init"):
        capture(f"{module}:failing")
    with pytest.raises(SetupError, match="a missing setting"):
        capture(f"{importing}:setup")
    built = sys.modules[module].BUILT
    assert len(built) == 4
    assert all(m.closed for m in built)


def test_after_capture_init_is_the_real_one_again_and_records_nothing(app_dir: Path) -> None:
    from chaos.user_config import _recording_init, load_setup

    real = notdiamond.init
    module = write_app(
        app_dir,
        "bound_init",
        """
        from notdiamond import init

        def setup():
            return init(OpenAI(api_key="k"), models=["openai/gpt-4o"])
        """,
    )
    with _recording_init() as calls:  # what capture() does around the import and the call
        load_setup(f"{module}:setup")().close()
    assert len(calls) == 1  # the module's own setup() inside the block
    assert notdiamond.init is real
    # the module bound the name while a recorder was in place: it now only calls the real init
    manager = sys.modules[module].setup()
    assert isinstance(manager, notdiamond.RetryManager)
    manager.close()
    assert len(calls) == 1  # the recorder keeps nothing (no manager held) after its block


def test_an_async_setup_function_is_awaited(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "async_setup",
        """
        async def setup():
            client = AsyncOpenAI(api_key="k")
            return notdiamond.init(client, models=["openai/gpt-4o"], timeout=7.5, deadline=20.0)
        """,
    )
    captured = capture(f"{module}:setup")
    assert captured.mode == "async"
    assert captured.config == {"models": ["openai/gpt-4o"], "timeout": 7.5, "deadline": 20.0}
    assert [(c.kind, c.is_async) for c in captured.clients] == [("AsyncOpenAI", True)]


def test_what_the_run_replaces_is_reported_and_secrets_are_not(app_dir: Path) -> None:
    module = write_app(
        app_dir,
        "secrets",
        """
        def setup():
            return notdiamond.init(OpenAI(api_key="sk-live-123"), models=["openai/gpt-4o"], api_key="nd-live-456",
                                   model_messages=[{"role": "system", "content": "internal prompt 789"}],
                                   seed=3, observer=print)
        """,
    )
    assert (
        main(["--init", f"{module}:setup", "--quick", "--scenario", "storm", "--out", "rep"]) == 0
    )
    data = results(app_dir / "rep")
    assert set(data["replaced"]) == {"api_key", "seed", "observer"}
    assert data["configuration"]["model_messages"] == "1 message(s) for every model"
    for name in ("results.json", "summary.md"):
        text = (app_dir / "rep" / name).read_text(encoding="utf-8")
        for secret in ("sk-live-123", "nd-live-456", "internal prompt 789"):
            assert secret not in text


# -- where reports go ---------------------------------------------------------------------------
def test_reports_default_to_chaos_report_outside_the_suites_own_run(tmp_path: Path) -> None:
    assert checkout_root() == ROOT
    assert default_out(init=False, cwd=ROOT) == SUITE_REPORT_DIR
    assert default_out(init=True, cwd=ROOT) == USER_REPORT_DIR
    assert default_out(init=False, cwd=tmp_path) == USER_REPORT_DIR
    assert default_out(init=False, cwd=ROOT / "examples") == USER_REPORT_DIR
    # an installed harness: site-packages/notdiamond/chaos, no checkout above it
    installed = tmp_path / "site-packages" / "notdiamond" / "chaos"
    installed.mkdir(parents=True)
    assert checkout_root(installed) is None
    assert (
        default_out(init=False, cwd=tmp_path / "site-packages", harness_dir=installed)
        == USER_REPORT_DIR
    )
    # a checkout of another project with the same layout is not this repository
    other = tmp_path / "other"
    (other / "reports" / "chaos").mkdir(parents=True)
    (other / "chaos").mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "something-else"\n', encoding="utf-8")
    assert checkout_root(other / "chaos") is None


def test_an_init_run_without_out_writes_chaos_report_in_the_current_directory(
    app_dir: Path,
) -> None:
    module = write_app(
        app_dir,
        "outdir",
        """
        def setup():
            return notdiamond.init(OpenAI(api_key="k"), models=["openai/gpt-4o"])
        """,
    )
    assert main(["--init", f"{module}:setup", "--quick", "--scenario", "storm", "--no-plots"]) == 0
    assert (app_dir / "chaos-report" / "summary.md").is_file()
    assert (app_dir / "chaos-report" / "results.json").is_file()
