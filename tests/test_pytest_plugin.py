"""The pytest plugin (chaos/pytest_plugin.py, chaos/testing.py): the ``chaos`` fixture.

Tests that need pytest itself (the fixture by name, teardown failures, the example application's
tests) run an inner pytest with ``pytester``, the plugin given explicitly (``-p``) and entry-point
autoloading off, so they behave the same whether or not an installed copy of the plugin is
registered. The rest drive :class:`chaos.testing.Chaos` directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import notdiamond
from chaos.faults import FaultModelError
from chaos.testing import Chaos, load_faults

pytest_plugins = ("pytester",)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "support_bot"
MESSAGES = [{"role": "user", "content": "hi"}]
OUTAGE = {
    "openai/gpt-4o": {"outages": [{"start": 0, "end": 1e6, "status": "503"}]},
    "azure/gpt-4o": {"latency": 0.8},
}


def _run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.RunResult:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    # Other tests of this session import the example application from examples/: the copy under
    # pytester.path must be collected as itself, not as the module already imported.
    for name in [m for m in sys.modules if m == "support_bot" or m.startswith("support_bot.")]:
        monkeypatch.delitem(sys.modules, name)
    return pytester.runpytest_inprocess("-p", "chaos.pytest_plugin", "-p", "no:cacheprovider")


# -- the example application's tests, and the README ------------------------------------------
def test_the_readme_shows_the_example_test_file_as_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Test your own configuration under faults: the pytest plugin")
    block = re.compile(r"```python\n(.*?)```", flags=re.DOTALL).search(readme, start)
    assert block is not None
    assert block.group(1) == (EXAMPLE / "test_support_bot.py").read_text()


def test_the_example_applications_tests_pass_with_only_the_plugins_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(
        EXAMPLE, pytester.path / "support_bot", ignore=shutil.ignore_patterns("__pycache__")
    )
    started = time.perf_counter()
    result = _run_inner(pytester, monkeypatch)
    result.assert_outcomes(passed=2)
    # ten minutes of outage, twice, in (much) less than real time
    assert time.perf_counter() - started < 60


def test_a_failed_assertion_names_the_offending_calls(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import notdiamond

        def test_too_strict(chaos):
            fake = chaos.providers({"openai/gpt-4o": {"latency": 3.0}})
            with notdiamond.init(fake.openai, models=["openai/gpt-4o"]):
                chaos.call(fake.openai.chat.completions.create,
                           model="notdiamond", messages=[{"role": "user", "content": "hi"}])
            chaos.trace.assert_no_call_longer_than(2.0)
        """
    )
    result = _run_inner(pytester, monkeypatch)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 call(s) took longer than 2.0s*",
            "*call 0 at t=0.000s took 3.000s, answered by openai/gpt-4o [[]openai/gpt-4o ok[]]*",
        ]
    )


def test_a_model_missing_from_the_fault_model_fails_the_test_naming_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import notdiamond

        def test_forgot_azure(chaos):
            fake = chaos.providers({"openai/gpt-4o": {"errors": {"500": 1.0}}})
            with notdiamond.init([fake.openai, fake.azure],
                                 models=["openai/gpt-4o", "azure/gpt-4o"]):
                chaos.call(fake.openai.chat.completions.create,
                           model="notdiamond", messages=[{"role": "user", "content": "hi"}])
        """
    )
    result = _run_inner(pytester, monkeypatch)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*requests for *'azure/gpt-4o'*, which the fault model does not describe*{'azure/gpt-4o': {}}*"
        ]
    )


def test_an_async_client_outside_chaos_run_fails_the_test_naming_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        """
        import asyncio

        def test_plain_asyncio_run(chaos):
            fake = chaos.providers({"openai/gpt-4o": {}})
            asyncio.run(chaos.acall(fake.async_openai.chat.completions.create,
                                    model="gpt-4o", messages=[{"role": "user", "content": "hi"}]))
        """
    )
    result = _run_inner(pytester, monkeypatch)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*used outside chaos.run(...)*chaos.run(main())*"])


# -- virtual time -------------------------------------------------------------------------------
def test_the_applications_own_init_waits_and_times_out_on_virtual_time() -> None:
    started = time.perf_counter()
    with Chaos.active() as chaos:
        fake = chaos.providers(OUTAGE)
        # an init line as an application writes it: no clock=, sleep=, observer= or seed=
        with notdiamond.init(
            [fake.openai, fake.azure],
            models=["openai/gpt-4o", "azure/gpt-4o"],
            max_retries={"openai/gpt-4o": 3, "azure/gpt-4o": 1},
            backoff=60.0,
        ) as manager:
            # (checked first: with the real time.sleep the calls below would take hours)
            assert manager.clock == chaos.clock.time
            assert manager.sleep == chaos.clock.sleep
            for _ in range(10):
                chaos.call(
                    fake.openai.chat.completions.create, model="notdiamond", messages=MESSAGES
                )
                chaos.sleep(1.0)
    # each call: 503, wait 60 s, 503, wait 3600 s, 503, then Azure's 0.8 s
    assert [call.seconds for call in chaos.trace.calls] == [pytest.approx(3660.8)] * 10
    assert chaos.trace.waits == [60.0, 3600.0] * 10
    assert chaos.now() == pytest.approx(10 * 3661.8)
    assert chaos.trace.requests_per_model() == {"openai/gpt-4o": 30, "azure/gpt-4o": 10}
    assert chaos.trace.attempts_per_model() == {"openai/gpt-4o": 30, "azure/gpt-4o": 10}
    first = chaos.trace.calls[0]
    assert [(e.model, e.attempt, e.decision) for e in first.attempts] == [
        ("openai/gpt-4o", 1, "retry"),
        ("openai/gpt-4o", 2, "retry"),
        ("openai/gpt-4o", 3, "fallback"),
        ("azure/gpt-4o", 1, "success"),
    ]
    assert [r.start for r in first.requests] == [0.0, 60.0, 3660.0, 3660.0]
    assert first.answered_by == "azure/gpt-4o"
    assert time.perf_counter() - started < 20  # ten hours of virtual time


def test_async_clients_run_on_the_same_virtual_clock() -> None:
    with Chaos.active() as chaos:
        fake = chaos.providers(OUTAGE)

        async def main() -> None:
            async with notdiamond.init(
                [fake.async_openai, fake.async_azure],
                models=["openai/gpt-4o", "azure/gpt-4o"],
                max_retries={"openai/gpt-4o": 2, "azure/gpt-4o": 1},
                backoff=300.0,
            ):
                for _ in range(3):
                    await chaos.acall(
                        fake.async_openai.chat.completions.create,
                        model="notdiamond",
                        messages=MESSAGES,
                    )
                    chaos.sleep(10.0)  # sync time passing moves the loop's time too

        started = time.perf_counter()
        chaos.run(main())
        assert time.perf_counter() - started < 10
    assert [call.seconds for call in chaos.trace.calls] == [pytest.approx(300.8)] * 3
    assert [call.started for call in chaos.trace.calls] == pytest.approx([0.0, 310.8, 621.6])
    assert chaos.trace.waits == [300.0] * 3
    chaos.trace.assert_all_succeeded()


def test_a_hedges_cancelled_loser_counts_as_a_request_its_model_received() -> None:
    with Chaos.active() as chaos:
        fake = chaos.providers(
            {"openai/gpt-4o": {"latency": 5.0}, "azure/gpt-4o": {"latency": 0.8}}
        )

        async def main() -> None:
            async with notdiamond.init(
                [fake.async_openai, fake.async_azure],
                models=["openai/gpt-4o", "azure/gpt-4o"],
                hedge=notdiamond.Hedge(delay=1.0),
                async_mode=True,
            ):
                for _ in range(3):
                    await chaos.acall(
                        fake.async_openai.chat.completions.create,
                        model="notdiamond",
                        messages=MESSAGES,
                    )
                    chaos.sleep(10.0)

        chaos.run(main())
    # OpenAI is slow: after 1 s the hedge asks Azure, which answers 0.8 s later
    assert [call.seconds for call in chaos.trace.calls] == [pytest.approx(1.8)] * 3
    assert chaos.trace.answered_by() == {"azure/gpt-4o": 3}
    assert chaos.trace.requests_per_model() == {"openai/gpt-4o": 3, "azure/gpt-4o": 3}


def test_an_explicit_clock_and_observer_of_the_application_are_kept() -> None:
    seen: list[notdiamond.AttemptEvent] = []
    with Chaos.active() as chaos:
        fake = chaos.providers({"openai/gpt-4o": {"errors": {"500": 1.0}}})
        with notdiamond.init(
            fake.openai,
            models=["openai/gpt-4o"],
            max_retries=2,
            backoff=1.0,
            clock=lambda: 1000.0,
            observer=seen.append,  # type: ignore[arg-type]
        ):
            chaos.call(fake.openai.chat.completions.create, model="notdiamond", messages=MESSAGES)
    assert [e.finished for e in seen] == [1000.0, 1000.0]  # its own clock
    assert chaos.trace.attempts == seen  # and the trace got the same events
    assert chaos.trace.calls[0].seconds == 1.0  # the sleep is still the test's
    assert type(chaos.trace.calls[0].error).__name__ == "InternalServerError"


def test_the_runtimes_defaults_are_restored_after_the_test() -> None:
    from notdiamond._options import OPTIONS, parse_options

    before = dict(OPTIONS)
    with Chaos.active():
        inside = parse_options({}, is_async=False)
        assert inside["seed"] == 0
        assert inside["observer"] is not None
    assert dict(OPTIONS) == before
    after = parse_options({}, is_async=False)
    assert after["clock"] is time.monotonic
    assert after["sleep"] is time.sleep
    assert after["seed"] is None
    assert after["observer"] is None


def test_the_seed_makes_weighted_draws_and_faults_replay() -> None:
    def answered(seed: int) -> list[str | None]:
        with Chaos.active() as chaos:
            fake = chaos.providers(
                {"openai/gpt-4o": {"errors": {"500": 0.3}}, "azure/gpt-4o": {}}, seed=seed
            )
            with notdiamond.init(
                [fake.openai, fake.azure], models={"openai/gpt-4o": 0.5, "azure/gpt-4o": 0.5}
            ):
                for _ in range(40):
                    chaos.call(
                        fake.openai.chat.completions.create, model="notdiamond", messages=MESSAGES
                    )
        return [call.answered_by for call in chaos.trace.calls]

    assert answered(1) == answered(1)
    assert answered(1) != answered(2)


# -- the assertion helpers ------------------------------------------------------------------------
def test_the_assertion_helpers_pass_and_fail_on_what_happened() -> None:
    with Chaos.active() as chaos:
        fake = chaos.providers({"openai/gpt-4o": {"errors": {"500": 0.5}, "latency": 1.0}}, seed=3)
        with notdiamond.init(fake.openai, models=["openai/gpt-4o"], max_retries=1):
            for _ in range(40):
                chaos.call(
                    fake.openai.chat.completions.create, model="notdiamond", messages=MESSAGES
                )
    trace = chaos.trace
    failed = len(trace.failed_calls)
    assert 5 < failed < 35
    assert trace.success_rate == (40 - failed) / 40
    assert trace.requests("openai/gpt-4o") == 40
    trace.assert_requests_at_most("openai/gpt-4o", 40)
    trace.assert_success_rate(trace.success_rate)
    trace.assert_no_call_longer_than(1.0)
    with pytest.raises(AssertionError, match=r"received 40 request\(s\), more than 39"):
        trace.assert_requests_at_most("openai/gpt-4o", 39)
    with pytest.raises(
        AssertionError, match=rf"(?s){failed} of 40 call\(s\) raised.*InternalServerError"
    ):
        trace.assert_all_succeeded()
    with pytest.raises(AssertionError, match="below"):
        trace.assert_success_rate(1.0)
    with pytest.raises(AssertionError, match=r"took longer than 0.5s"):
        trace.assert_no_call_longer_than(0.5)
    with pytest.raises(AssertionError, match=r"make the calls through chaos.call"):
        Chaos().trace.assert_all_succeeded()


# -- the fault model ------------------------------------------------------------------------------
def test_the_fault_model_comes_from_a_scenario_file_or_a_plain_one(tmp_path: Path) -> None:
    scenario = tmp_path / "outage.json"
    scenario.write_text(json.dumps({"config": {"models": ["openai/gpt-4o"]}, "providers": OUTAGE}))
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(OUTAGE))
    assert load_faults(scenario) == load_faults(plain) == load_faults(OUTAGE)
    assert load_faults(str(plain))["openai/gpt-4o"].outages[0].end == 1e6


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ({"gpt-4o": {}}, r"'gpt-4o' is not a model key.*'openai/gpt-4o'"),
        ({"anthropic/claude": {}}, r"provider one of \['openai', 'azure'\]"),
        ({}, r"non-empty dict"),
        ({"openai/gpt-4o": {"errors": {"501": 0.1}}}, r"'501' is not a fault"),
    ],
)
def test_a_wrong_fault_model_is_refused_naming_the_fix(faults: object, message: str) -> None:
    with pytest.raises(FaultModelError, match=message):
        load_faults(faults)  # type: ignore[arg-type]


def test_a_fault_model_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text("openai/gpt-4o: {}")
    with pytest.raises(FaultModelError, match=r"ends in .json or .toml"):
        load_faults(path)
    with pytest.raises(FaultModelError, match="cannot read"):
        load_faults(tmp_path / "missing.json")


def test_one_fault_model_per_test() -> None:
    with Chaos.active() as chaos:
        chaos.providers({"openai/gpt-4o": {}})
        with pytest.raises(RuntimeError, match="already called"):
            chaos.providers({"azure/gpt-4o": {}})


def test_an_async_function_given_to_call_or_run_wrongly_is_refused_naming_the_fix() -> None:
    import asyncio
    import warnings

    async def ask() -> str:
        return "answer"

    with Chaos.active() as chaos, warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited" left behind
        with pytest.raises(TypeError, match=r"use chaos\.run\(chaos\.acall\(fn, \*args\)\)"):
            chaos.call(ask)
        assert chaos.trace.calls == []  # nothing that happened was recorded
        with pytest.raises(TypeError, match=r"e\.g\. chaos\.run\(main\(\)\)"):
            chaos.run(ask)  # type: ignore[arg-type]

        async def nested() -> str:
            return chaos.run(ask())

        with pytest.raises(RuntimeError, match=r"plain `def test_\.\.\.\(chaos\)`"):
            asyncio.run(nested())
        assert chaos.run(chaos.acall(ask)) == "answer"  # the right way still works after
        assert [c.value for c in chaos.trace.calls] == ["answer"]


def test_the_runtimes_defaults_are_restored_when_the_test_raises() -> None:
    from notdiamond._options import OPTIONS

    before = dict(OPTIONS)
    inside: list[bool] = []

    def failing_test() -> None:
        with Chaos.active():
            inside.append(dict(OPTIONS) != before)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_test()
    assert inside == [True]
    assert dict(OPTIONS) == before


# -- the plugin module ----------------------------------------------------------------------------
def test_the_entry_point_module_imports_neither_the_library_nor_openai() -> None:
    """pytest imports the entry point module on every run: as installed (a top-level copy of
    chaos/pytest_plugin.py), it must not import notdiamond or openai until the fixture is used."""
    code = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("notdiamond_pytest", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
heavy = sorted(m for m in ("notdiamond", "openai", "chaos", "numpy") if m in sys.modules)
assert not heavy, heavy
# in a checkout (an editable install), the fixture finds the harness as the chaos package
assert module._harness().__name__ == "chaos.testing", module._harness().__name__
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "chaos" / "pytest_plugin.py")],
        check=True,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture
def support_bot(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example application importable here; forgotten afterwards (pytester runs import it
    from their own copy)."""
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))
    yield
    for name in [m for m in sys.modules if m.partition(".")[0] == "support_bot"]:
        del sys.modules[name]


@pytest.mark.usefixtures("support_bot")
def test_without_the_breaker_the_examples_request_bound_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The example's ``assert_requests_at_most("openai/gpt-4o", 10)`` holds because of the breaker."""
    from support_bot import llm
    from support_bot.app import answer

    real_init = notdiamond.init

    def without_breaker(*args, **kwargs):  # type: ignore[no-untyped-def]
        return real_init(*args, **{**kwargs, "circuit_breaker": None})

    monkeypatch.setattr(llm.notdiamond, "init", without_breaker)
    with Chaos.active() as chaos:
        fake = chaos.providers({**OUTAGE, "azure/gpt-4o": {"latency": 0.8}})
        with llm.make_resilient(fake.openai, fake.azure):
            while chaos.now() < 600:
                chaos.call(answer, fake.openai, "Where is my parcel?")
                chaos.sleep(5)
    chaos.trace.assert_all_succeeded()
    assert chaos.trace.requests("openai/gpt-4o") > 100
    with pytest.raises(AssertionError, match="more than 10"):
        chaos.trace.assert_requests_at_most("openai/gpt-4o", 10)
