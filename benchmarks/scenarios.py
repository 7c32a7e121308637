"""Fault scenarios in virtual time, and the driver that runs one contender through them.

A scenario gives each provider a fault model: an outage window, a rate of 5xx answers, a rate of
429s with ``Retry-After``, a rate of responses slower than the timeout. Logical requests arrive on a
fixed schedule (open loop) and are independent: each one starts with the virtual clock at its own
arrival time, so a slow request delays nobody else.

Time is virtual: the fake provider advances the clock by each response's latency (or by the read
timeout, then raises a timeout as the HTTP stack would), and ``time.sleep`` is replaced by a sleep
that advances the clock. That covers every contender here: the OpenAI SDK's own retries, tenacity's
default sleep, the original NotDiamond SDK and this library all call ``time.sleep`` at call time.

Faults are drawn from a generator seeded by ``(seed, provider, request, attempt)``: the k-th HTTP
request that any contender sends to a provider for logical request i meets the same fault, whatever
the contender did before. Same scenarios, same seeds, same faults.

Stdlib, ``openai`` and its HTTP library only: the runner of the original NotDiamond SDK imports this
module from its own virtualenv.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import openai

from benchmarks import fake_provider
from benchmarks.fake_provider import http

#: The configuration every resilient contender gets: primary first, then the fallback.
MODELS: Final = ["openai/gpt-4o", "azure/gpt-4o"]
MAX_RETRIES: Final = 3  # attempts per model, as notdiamond.init counts them
BACKOFF: Final = 2.0
TIMEOUT: Final = 10.0  # seconds per attempt, for every contender


@dataclass(frozen=True)
class FaultModel:
    """How one provider misbehaves. Rates are per HTTP request; times are virtual seconds."""

    latency: float = 0.5  # median latency of a healthy response
    jitter: float = 0.3  # sigma of the log-normal spread around it
    error_latency: float = 0.05  # time to an error answer (5xx, 429)
    outage: tuple[float, float] | None = None  # [start, end) as fractions of the run: all 503
    error_rate: float = 0.0  # chance of a 500
    rate_limit_rate: float = 0.0  # chance of a 429 with Retry-After
    retry_after: float = 2.0
    slow_rate: float = 0.0  # chance of a response slower than any sane timeout
    slow_latency: float = 30.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    primary: FaultModel  # openai/gpt-4o
    secondary: FaultModel = field(default_factory=FaultModel)  # azure/gpt-4o
    #: Streamed requests: a response's latency is the time to its first chunk (real time only).
    stream: bool = False

    @property
    def has_healthy_model(self) -> bool:
        """Whether one of the providers meets no fault at all (then every call can succeed)."""
        return FaultModel() in (self.primary, self.secondary)


SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario("healthy", "Healthy providers (the reference for the others)", FaultModel()),
        Scenario(
            "outage",
            "Outage of the primary (503 for the middle 30% of the run)",
            FaultModel(outage=(0.35, 0.65)),
        ),
        Scenario(
            "flaky_5xx",
            "Flaky 5xx: 20% of requests to either provider answer 500",
            FaultModel(error_rate=0.2),
            FaultModel(error_rate=0.2),
        ),
        Scenario(
            "rate_limit",
            "Rate limits: 40% of requests to the primary answer 429, Retry-After: 2",
            FaultModel(rate_limit_rate=0.4, retry_after=2.0),
        ),
        Scenario(
            "slow",
            "Slow provider: 25% of primary responses take 30 s (timeout 10 s)",
            FaultModel(slow_rate=0.25, slow_latency=30.0),
        ),
    )
}


#: Streamed scenarios, run in real time only (``loopback.py``), where a stream's first chunk can
#: come after its headers: the latency reported is the time to the first chunk.
STREAM_SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            "stream_slow",
            "Streams: 25% of primary streams send their first chunk after 30 s (timeout 10 s)",
            FaultModel(slow_rate=0.25, slow_latency=30.0),
            stream=True,
        ),
    )
}


@dataclass(frozen=True)
class Workload:
    requests: int = 2000
    interarrival: float = 0.5  # virtual seconds between arrivals
    seed: int = 20241125

    @property
    def duration(self) -> float:
        return self.requests * self.interarrival


@dataclass
class RequestRecord:
    """One logical request as its caller saw it."""

    ok: bool
    latency: float  # virtual seconds from the call to its result or error
    http_requests: int  # HTTP requests it caused, over all providers
    waited: float  # virtual seconds spent in sleeps (backoff, Retry-After)
    error: str | None = None  # exception class name of a failure
    outage_requests: int = (
        0  # of http_requests, those answered by a provider's outage (a dead model)
    )


class VirtualClock:
    """Virtual seconds; ``sleep`` advances them and counts them as waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waited = 0.0

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.now += seconds
            self.waited += seconds


@contextlib.contextmanager
def virtual_time(clock: VirtualClock) -> Iterator[None]:
    """Every ``time.sleep`` in the process advances ``clock`` instead of sleeping."""
    real_sleep = time.sleep
    time.sleep = clock.sleep  # type: ignore[assignment]  # float is all the callers pass
    try:
        yield
    finally:
        time.sleep = real_sleep


_ERROR_BODY: Final = json.dumps({"error": {"message": "fault", "type": "server_error"}}).encode()


@dataclass(frozen=True)
class Fault:
    """What one HTTP request meets: a status after ``latency`` virtual seconds.

    A 200 whose ``latency`` exceeds the client's read timeout is a timeout for that client.
    """

    status: int
    latency: float
    headers: dict[str, str] = field(default_factory=dict)
    outage: bool = False  # answered by the provider's outage window


def draw_fault(
    scenario: Scenario,
    workload: Workload,
    provider: str,
    request_index: int,
    attempt: int,
    now: float,
) -> Fault:
    """The fault met by the ``attempt``-th request (from 0) to ``provider`` for logical request
    ``request_index``, sent at scenario time ``now``: a pure function of these and the seed."""
    faults = scenario.secondary if provider == "azure" else scenario.primary
    rng = random.Random(f"{workload.seed}/{provider}/{request_index}/{attempt}")
    u = rng.random()
    latency = faults.latency * rng.lognormvariate(0.0, faults.jitter)
    if faults.outage is not None:
        start, end = (f * workload.duration for f in faults.outage)
        if start <= now < end:
            return Fault(503, faults.error_latency, outage=True)
    if u < faults.error_rate:
        return Fault(500, faults.error_latency)
    u -= faults.error_rate
    if u < faults.rate_limit_rate:
        return Fault(429, faults.error_latency, {"retry-after": f"{faults.retry_after:g}"})
    u -= faults.rate_limit_rate
    if u < faults.slow_rate:
        latency = faults.slow_latency
    return Fault(200, latency)


class FaultyProviders:
    """The fake transport's handler for both providers, following a scenario in virtual time."""

    def __init__(self, scenario: Scenario, workload: Workload, clock: VirtualClock) -> None:
        self.scenario = scenario
        self.workload = workload
        self.clock = clock
        self.request_index = 0
        self.attempts = {"openai": 0, "azure": 0}
        self.outage_requests = 0

    def begin(self, request_index: int) -> None:
        self.request_index = request_index
        self.attempts = {"openai": 0, "azure": 0}
        self.outage_requests = 0

    @property
    def http_requests(self) -> int:
        return sum(self.attempts.values())

    def __call__(self, request: Any) -> Any:
        provider = "azure" if request.url.host.endswith(".azure.com") else "openai"
        attempt = self.attempts[provider]
        self.attempts[provider] += 1
        fault = draw_fault(
            self.scenario, self.workload, provider, self.request_index, attempt, self.clock.now
        )
        if fault.outage:
            self.outage_requests += 1
        if fault.status != 200:
            return self._error(fault.status, fault.latency, fault.headers)
        read_timeout = (request.extensions.get("timeout") or {}).get("read")
        if read_timeout is not None and fault.latency > read_timeout:
            self.clock.now += read_timeout
            raise http.ReadTimeout("simulated read timeout", request=request)
        self.clock.now += fault.latency
        return fake_provider.succeed(request)

    def _error(self, status: int, latency: float, headers: dict[str, str] | None = None) -> Any:
        self.clock.now += latency
        return http.Response(
            status,
            content=_ERROR_BODY,
            headers={"content-type": "application/json", **(headers or {})},
        )


#: A contender: given the two fake-backed clients and the run's virtual clock (for a library that
#: takes an injected clock), a context that yields one logical call.
Contender = Callable[
    [openai.OpenAI, openai.AzureOpenAI, VirtualClock], AbstractContextManager[Callable[[], object]]
]


def run_scenario(
    contender: Contender, scenario: Scenario, workload: Workload
) -> list[RequestRecord]:
    """Send ``workload.requests`` logical requests through ``contender`` under ``scenario``."""
    clock = VirtualClock()
    providers = FaultyProviders(scenario, workload, clock)
    # The clients as a user builds them: the SDK's defaults, except the shared per-request timeout.
    primary = fake_provider.openai_client(providers, timeout=TIMEOUT)
    secondary = fake_provider.azure_client(providers, timeout=TIMEOUT)
    random.seed(workload.seed)  # the SDK's and tenacity's jitter use the global generator
    records: list[RequestRecord] = []
    # Retry warnings would flood stderr; they cost no virtual time.
    logging.disable(logging.CRITICAL)
    try:
        with virtual_time(clock), contender(primary, secondary, clock) as call:
            for i in range(workload.requests):
                clock.now = arrival = i * workload.interarrival
                waited_before = clock.waited
                providers.begin(i)
                error: str | None = None
                try:
                    call()
                except Exception as exc:
                    error = type(exc).__name__
                records.append(
                    RequestRecord(
                        ok=error is None,
                        latency=clock.now - arrival,
                        http_requests=providers.http_requests,
                        waited=clock.waited - waited_before,
                        error=error,
                        outage_requests=providers.outage_requests,
                    )
                )
    finally:
        logging.disable(logging.NOTSET)
        primary.close()
        secondary.close()
    return records


def records_to_json(records: list[RequestRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]


#: Every scenario by name, virtual-time and streamed.
ALL_SCENARIOS: Final[dict[str, Scenario]] = {**SCENARIOS, **STREAM_SCENARIOS}
