"""The checks' registry and verdicts, on hand-made traces (no SDK traffic)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("scipy")

from chaos.checks import REGISTRY, RunView, check_names, run_checks
from chaos.scenario import Scenario, load_builtin
from chaos.trace import CALLER_MESSAGES, Ending, Failure, HttpRecord, Trace


def _scenario(name: str) -> Scenario:
    (scenario,) = load_builtin([name])
    return scenario


def test_every_check_is_registered_with_a_name_and_a_line_of_description() -> None:
    assert len({(c.name, c.path) for c in REGISTRY}) == len(REGISTRY)
    for check in REGISTRY:
        assert check.name in check_names()
        assert check.path in ("sdk", "selector")
        assert check.description
        assert "\n" not in check.description
    names = set(check_names())
    assert {"attempt_fields", "final_error", "reproducible_selection"} <= names


def test_scenarios_take_their_per_model_settings_from_the_runtime() -> None:
    s = _scenario("per-model-policies")
    assert s.max_attempts == {"azure/gpt-4o": 4, "openai/gpt-4o": 2, "openai/gpt-4o-mini": 1}
    # the default timeout of a model the file leaves out is the runtime's
    assert s.timeouts["openai/gpt-4o-mini"] == 60.0
    assert s.messages["azure/gpt-4o"] == ()
    assert s.messages["openai/gpt-4o"][0]["role"] == "system"
    assert s.retry_after_cap == 20.0


def _record(
    i: int, request: int, key: str, outcome: str, *, timeout: float, messages: str
) -> HttpRecord:
    return HttpRecord(
        request,
        key,
        key.split("/")[0],
        float(i),
        float(i) + 0.1,
        outcome,
        None,
        "mix",
        False,
        0.1,
        key.split("/", 1)[1],
        messages,
        timeout,
        i,
    )


def test_a_check_with_nothing_to_judge_is_not_exercised_when_events_were_due() -> None:
    s = _scenario("high-failure")
    trace = Trace()
    trace.issued = 1000  # a thousand calls, none of which failed on every model
    (result,) = run_checks(RunView(s, 1, trace), ["final_error"], paths=("sdk",))
    assert result.verdict == "not exercised"
    assert result.predicted_events is not None
    assert result.predicted_events > 14


def test_attempt_fields_sees_a_wrong_timeout_on_a_retry_only() -> None:
    s = _scenario("per-model-policies")
    good = json.dumps(list(CALLER_MESSAGES), sort_keys=True, separators=(",", ":"))
    trace = Trace()
    trace.issued = 1
    trace.http = [
        _record(0, 0, "azure/gpt-4o", "503", timeout=3.0, messages=good),
        _record(1, 0, "azure/gpt-4o", "ok", timeout=4.5, messages=good),
    ]
    (result,) = run_checks(RunView(s, 1, trace), ["attempt_fields"], paths=("sdk",))
    assert not result.passed
    assert result.details["wrong"] == {"timeout on a retry attempt": 1}


def test_final_error_wants_the_last_attempts_error_with_every_failure_attached() -> None:
    s = _scenario("per-model-policies")
    msgs = {
        k: json.dumps([*s.messages[k], *CALLER_MESSAGES], sort_keys=True, separators=(",", ":"))
        for k in s.order
    }
    recs = [
        _record(0, 0, "azure/gpt-4o", "404", timeout=3.0, messages=msgs["azure/gpt-4o"]),
        _record(1, 0, "openai/gpt-4o", "403", timeout=8.0, messages=msgs["openai/gpt-4o"]),
        _record(
            2, 0, "openai/gpt-4o-mini", "422", timeout=60.0, messages=msgs["openai/gpt-4o-mini"]
        ),
    ]
    failures = (
        Failure("azure/gpt-4o", 1, "NotFoundError", 0, False),
        Failure("openai/gpt-4o", 1, "PermissionDeniedError", 1, False),
        Failure("openai/gpt-4o-mini", 1, "UnprocessableEntityError", 2, True),
    )

    def judge(ending: Ending) -> list[str]:
        trace = Trace()
        trace.issued = 1
        trace.http = list(recs)
        trace.endings = [ending]
        (result,) = run_checks(RunView(s, 1, trace), ["final_error"], paths=("sdk",))
        return sorted(result.details["problems"])

    right = Ending(0, "error", "UnprocessableEntityError", 3.0, 2, failures, True)
    assert judge(right) == []
    assert judge(right._replace(failures=None)) == ["notdiamond_failures not attached"]
    first = right._replace(error="NotFoundError", http_id=0)
    assert "the raised error is not the last attempt's answer" in judge(first)
    returned = Ending(0, "response", None, 3.0, returned="NoneType")
    assert judge(returned) == ["every attempt failed, yet the call ended in a response"]
