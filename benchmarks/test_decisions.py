"""The cost of the decisions on the failure path, and the scenario driver's simulated throughput.

* Model selection: ``first()`` of a priority list and of a weighted draw (4 models).
* Fallback: ``RetryManager.get_next_model`` after one failure, list and weighted.
* Retry decision: ``RetryPolicy.delay_after`` for a 503 (backoff) and a 429 with Retry-After.
* Simulated requests per wall-second of the scenario driver (virtual time), through this library,
  and of the chaos harness (``chaos/``: traffic plus its statistical checks) on its built-in
  in-process scenarios at their ``quick_n`` size.
"""

from __future__ import annotations

import os
from typing import Any, Final

import openai
import pytest

import notdiamond
from benchmarks import fake_provider
from benchmarks.contenders import this_library
from benchmarks.scenarios import SCENARIOS, Workload, run_scenario
from chaos.runner import DEFAULT_SEED, Job, derive_seed, execute
from chaos.scenario import load_builtin

#: The chaos harness's built-in scenarios that run in process (the loopback one runs real time).
CHAOS_SCENARIOS: Final = {s.name: s for s in load_builtin() if s.mode != "server"}

FOUR_MODELS: Final = ["openai/gpt-4o", "openai/gpt-4o-mini", "azure/gpt-4o", "azure/gpt-4o-mini"]
WEIGHTS: Final = dict(zip(FOUR_MODELS, (0.4, 0.3, 0.2, 0.1), strict=True))
#: Logical requests per round of the throughput benchmark (``BENCH_THROUGHPUT_REQUESTS``).
THROUGHPUT_REQUESTS: Final = int(os.environ.get("BENCH_THROUGHPUT_REQUESTS", "400"))


def _manager(models: Any) -> notdiamond.RetryManager:
    return notdiamond.init(
        [fake_provider.openai_client(), fake_provider.azure_client()],
        models=models,
        max_retries=3,
        seed=1,
    )


def _status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = fake_provider.http.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = fake_provider.http.Response(status, headers=headers, request=request)
    cls = openai.RateLimitError if status == 429 else openai.InternalServerError
    return cls("fault", response=response, body=None)


def _tag(benchmark: Any, name: str, per_round: int = 1) -> None:
    benchmark.extra_info.update(kind="decision", name=name, calls_per_round=per_round)


@pytest.mark.benchmark(group="selection")
@pytest.mark.parametrize("models", ["list", "weighted"])
def test_first_model(benchmark: Any, models: str) -> None:
    with _manager(FOUR_MODELS if models == "list" else WEIGHTS) as manager:
        _tag(benchmark, f"first model ({models}, 4 models)")
        assert benchmark(manager._selector.first) in FOUR_MODELS


@pytest.mark.benchmark(group="fallback")
@pytest.mark.parametrize("models", ["list", "weighted"])
def test_next_model(benchmark: Any, models: str) -> None:
    with _manager(FOUR_MODELS if models == "list" else WEIGHTS) as manager:
        _tag(benchmark, f"fallback model ({models}, 4 models, 1 failed)")
        failed = ["openai/gpt-4o"]
        assert benchmark(manager.get_next_model, failed) not in (None, "openai/gpt-4o")


@pytest.mark.benchmark(group="retry decision")
@pytest.mark.parametrize("fault", ["503", "429 Retry-After"])
def test_retry_decision(benchmark: Any, fault: str) -> None:
    exc = _status_error(503) if fault == "503" else _status_error(429, {"retry-after": "3"})
    with _manager(FOUR_MODELS) as manager:
        _tag(benchmark, f"retry decision after a {fault}")
        policy = manager.policies["openai/gpt-4o"]
        state = policy.new_state(0.0)
        assert benchmark(policy.delay_after, state, 1, exc, 0.0) == (2.0 if fault == "503" else 3.0)


@pytest.mark.benchmark(group="scenario throughput")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_throughput(benchmark: Any, scenario: str) -> None:
    workload = Workload(requests=THROUGHPUT_REQUESTS)
    _tag(benchmark, f"simulated requests ({scenario})", THROUGHPUT_REQUESTS)
    benchmark.extra_info["scenario"] = scenario
    records = benchmark.pedantic(
        run_scenario, args=(this_library, SCENARIOS[scenario], workload), rounds=3, iterations=1
    )
    assert len(records) == THROUGHPUT_REQUESTS
    assert all(r.ok for r in records)


@pytest.mark.benchmark(group="chaos harness throughput")
@pytest.mark.parametrize("name", list(CHAOS_SCENARIOS))
def test_chaos_harness_throughput(benchmark: Any, name: str) -> None:
    scenario = CHAOS_SCENARIOS[name]
    job = Job(scenario, scenario.traffic.quick_n, derive_seed(DEFAULT_SEED, name), quick=True)
    _tag(benchmark, f"chaos harness: {name} ({scenario.mode}, with checks)", job.n)
    benchmark.extra_info["scenario"] = name
    result = benchmark.pedantic(execute, args=(job,), kwargs={"show_progress": False}, rounds=1)
    assert result.error is None
    assert result.http_requests >= job.n
