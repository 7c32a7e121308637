"""Run scenarios: patch SDK clients with ``notdiamond.init``, send the traffic, run the checks.

One :class:`Job` is one scenario at one size (optionally under a mutant). Jobs are independent
and are spread over the machine's cores (``multiprocessing``); each returns its check results
and the small extracts the report plots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import power
from .checks import Checker, CheckResult
from .clock import VirtualClock, run_virtual
from .monkeypatch import swapped
from .scenario import Scenario, expected_http_per_request
from .trace import REQUEST_HEADER, Ending, Trace, current_request
from .transport import FakeProvider, make_clients, make_transports, sdk_http_module

MESSAGES = [{"role": "user", "content": "chaos"}]

#: Seed of the default (reproducible) run.
DEFAULT_SEED = 20_251_125


def derive_seed(base: int, *parts: str) -> int:
    """A per-scenario (and per-mutant) seed: stable across runs and machines."""
    return (base * 2_654_435_761 + zlib.crc32("/".join(parts).encode())) % (2**31 - 1)


@dataclass
class Job:
    scenario: Scenario
    n: int
    seed: int
    mutant: str | None = None
    #: Checks to run (default: the scenario's).
    checks: tuple[str, ...] | None = None
    quick: bool = False
    #: Write the run's attempt trace here as JSON lines (``--traces DIR``).
    trace_dir: str | None = None

    @property
    def label(self) -> str:
        return self.scenario.name + (f" [mutant: {self.mutant}]" if self.mutant else "")

    @property
    def cost(self) -> float:
        per = expected_http_per_request(self.scenario)
        if self.scenario.mode == "async":
            per *= 1.3
        if self.scenario.mode == "server":
            per *= 4 + 60 * self.scenario.time_scale
        return self.n * per


@dataclass
class JobResult:
    label: str
    scenario: str
    mutant: str | None
    seed: int
    n: int
    checks: list[CheckResult]
    wall_s: float
    virtual_s: float
    http_requests: int
    plot: dict[str, Any] = field(default_factory=dict)
    max_in_flight: int = 0
    error: str | None = None


def sample_size(scenario: Scenario, quick: bool) -> int:
    """The scenario's request count: fixed in its file, or from the power analysis ("auto")."""
    if quick:
        return scenario.traffic.quick_n
    if scenario.traffic.n != "auto":
        return scenario.traffic.n
    return max(auto_sizes(scenario).values(), default=1000)


def auto_sizes(scenario: Scenario) -> dict[str, int]:
    """Requests each statistical check of the scenario needs (power analysis)."""
    from .checks import predicted_success

    sizes: dict[str, int] = {}
    weighted_first = scenario.weights is not None and scenario.traffic.model == "notdiamond"
    if weighted_first and "first_choice_weights" in scenario.checks:
        assert scenario.weights is not None
        sizes["first_choice_weights"] = power.chi2_sample_size(scenario.weights)
    if "success_rate" in scenario.checks and scenario.stationary:
        sizes["success_rate"] = power.binomial_sample_size(predicted_success(scenario))
    return sizes


# -- progress ------------------------------------------------------------------------------
class Progress:
    def __init__(self, label: str, total: int, enabled: bool) -> None:
        self.label, self.total, self.enabled = label, total, enabled
        self.start = time.perf_counter()
        self.next_report = self.start + 5.0
        self.step = max(1, total // 10) if total >= 5000 else total + 1

    def tick(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if (
            done % self.step == 0
            or now >= self.next_report
            or (done == self.total and now - self.start > 5)
        ):
            self.next_report = now + 5.0
            pct = 100 * done / max(self.total, 1)
            print(
                f"  [{self.label}] {done}/{self.total} requests ({pct:.0f}%), "
                f"{now - self.start:.1f} s",
                file=sys.stderr,
                flush=True,
            )


# -- SDK retries on virtual time -------------------------------------------------------------
class _TimeShim:
    """Stands in for the ``time`` module inside ``openai._base_client``: its ``sleep`` (the SDK's
    own retry backoff, only used when SDK retries are on) runs on the virtual clock."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def sdk_sleep_on(clock: VirtualClock) -> Iterator[None]:
    import openai._base_client as base

    with swapped(base, "time", _TimeShim(clock)):
        yield


@contextlib.contextmanager
def quiet_runtime_logs() -> Iterator[None]:
    """The runtime logs every fallback as a warning; a chaos run makes tens of thousands."""
    logger = logging.getLogger("notdiamond")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# -- one run -------------------------------------------------------------------------------
def init_kwargs(scenario: Scenario) -> dict[str, Any]:
    return dict(scenario.config)


def _client_for(scenario: Scenario, clients: list[Any]) -> Any:
    first = scenario.first_key()
    provider = first.split("/", 1)[0] if first else scenario.order[0].split("/", 1)[0]
    for c in clients:
        is_azure = "Azure" in type(c).__name__
        if (provider == "azure") == is_azure:
            return c
    return clients[0]


def _request_model(scenario: Scenario) -> str:
    model = scenario.traffic.model
    return model


def send_sync(
    create: Callable[..., Any],
    i: int,
    model: str,
    stream: bool,
    endings: list[Ending],
    now: Callable[[], float],
) -> None:
    """Request ``i`` through a sync client's ``create`` (read to the end if streamed); how it ended
    (response, error or stream broken mid-answer) goes to ``endings``, stamped with ``now()``."""
    headers = {REQUEST_HEADER: str(i)}
    try:
        if stream:
            chunks = create(model=model, messages=MESSAGES, stream=True, extra_headers=headers)
            try:
                for _ in chunks:
                    pass
            except Exception as exc:
                endings.append(Ending(i, "stream_error", type(exc).__name__, now()))
                return
        else:
            create(model=model, messages=MESSAGES, extra_headers=headers)
    except Exception as exc:
        endings.append(Ending(i, "error", type(exc).__name__, now()))
    else:
        endings.append(Ending(i, "response", None, now()))


def _sdk_clients(providers: set[str], url: str, *, api_key: str) -> list[Any]:
    """Sync SDK clients on their own HTTP stack, one per provider (sorted), all aimed at ``url``."""
    import openai

    clients: list[Any] = []
    for provider in sorted(providers):
        if provider == "azure":
            clients.append(
                openai.AzureOpenAI(api_key=api_key, api_version="2024-10-21", azure_endpoint=url)
            )
        else:
            clients.append(openai.OpenAI(api_key=api_key, base_url=url + "/v1"))
    return clients


def run_sync(
    scenario: Scenario, n: int, seed: int, *, extra: dict[str, Any], progress: Progress
) -> tuple[Trace, float]:
    import notdiamond

    http = sdk_http_module()
    transport_cls, _ = make_transports(http)
    vc = VirtualClock()
    trace = Trace()
    fake = FakeProvider(scenario.providers, seed, trace, vc.time)
    clients = make_clients(
        scenario.provider_set(),
        is_async=False,
        transport_for=lambda p: transport_cls(fake, p, vc.advance),
        http=http,
    )
    client = _client_for(scenario, clients)
    model = _request_model(scenario)
    stream_rng = random.Random(seed + 17)
    interval = scenario.traffic.interval
    share = scenario.traffic.stream
    with (
        sdk_sleep_on(vc),
        notdiamond.init(
            clients,
            **init_kwargs(scenario),
            seed=seed,
            clock=vc.time,
            sleep=vc.sleep,
            observer=trace.observer,
            **extra,
        ),
    ):
        create = client.chat.completions.create
        for i in range(n):
            vc.advance_to(i * interval)
            current_request.set(i)
            trace.issued += 1
            stream = share > 0 and stream_rng.random() < share
            send_sync(create, i, model, stream, trace.endings, vc.time)
            progress.tick(i + 1)
    return trace, vc.now


def run_async(
    scenario: Scenario, n: int, seed: int, *, extra: dict[str, Any], progress: Progress
) -> tuple[Trace, float]:
    import notdiamond

    http = sdk_http_module()
    _, transport_cls = make_transports(http)
    trace = Trace()
    interval = scenario.traffic.interval
    share = scenario.traffic.stream
    model = _request_model(scenario)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        fake = FakeProvider(scenario.providers, seed, trace, loop.time)
        clients = make_clients(
            scenario.provider_set(),
            is_async=True,
            transport_for=lambda p: transport_cls(fake, p),
            http=http,
        )
        client = _client_for(scenario, clients)
        stream_rng = random.Random(seed + 17)
        in_flight = 0
        done = 0

        async def one(i: int, stream: bool) -> None:
            nonlocal in_flight, done
            current_request.set(i)
            in_flight += 1
            trace.max_in_flight = max(trace.max_in_flight, in_flight)
            headers = {REQUEST_HEADER: str(i)}
            create = client.chat.completions.create
            try:
                if stream:
                    chunks = await create(
                        model=model, messages=MESSAGES, stream=True, extra_headers=headers
                    )
                    try:
                        async for _ in chunks:
                            pass
                    except Exception as exc:
                        trace.endings.append(
                            Ending(i, "stream_error", type(exc).__name__, loop.time())
                        )
                        return
                else:
                    await create(model=model, messages=MESSAGES, extra_headers=headers)
            except Exception as exc:
                trace.endings.append(Ending(i, "error", type(exc).__name__, loop.time()))
            else:
                trace.endings.append(Ending(i, "response", None, loop.time()))
            finally:
                in_flight -= 1
                done += 1
                progress.tick(done)

        with notdiamond.init(
            clients,
            **init_kwargs(scenario),
            seed=seed,
            clock=loop.time,
            sleep=asyncio.sleep,
            observer=trace.observer,
            **extra,
        ):
            tasks = []
            for i in range(n):
                delay = i * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                trace.issued += 1
                stream = share > 0 and stream_rng.random() < share
                tasks.append(asyncio.create_task(one(i, stream)))
            await asyncio.gather(*tasks)
        for c in clients:
            await c.close()
        return loop.time()

    virtual, _ = run_virtual(main())
    return trace, virtual


def run_server(
    scenario: Scenario, n: int, seed: int, *, extra: dict[str, Any], progress: Progress
) -> tuple[Trace, float]:
    """End to end: real SDK clients over real sockets to the loopback fake server."""
    import notdiamond

    from .server import LoopbackServer

    trace = Trace()
    scale = scenario.time_scale
    interval = scenario.traffic.interval
    share = scenario.traffic.stream
    model = _request_model(scenario)
    stream_rng = random.Random(seed + 17)
    bound = max(60.0, 20 * n * (1 + interval) * scale + 30)
    with LoopbackServer(
        scenario.providers,
        seed,
        trace,
        time_scale=scale,
        timeouts=scenario.timeouts,
        max_requests=50 * n,
        max_seconds=bound,
    ) as server:
        clients = _sdk_clients(scenario.provider_set(), server.url, api_key="chaos")
        client = _client_for(scenario, clients)

        def sleep(seconds: float) -> None:
            time.sleep(seconds * scale)

        kwargs = init_kwargs(scenario)
        # the SDK's timeouts are real seconds: scale them with the server's delays
        kwargs["timeout"] = {k: t * scale for k, t in scenario.timeouts.items()}
        with notdiamond.init(
            clients,
            **kwargs,
            seed=seed,
            clock=server.now,
            sleep=sleep,
            observer=trace.observer,
            **extra,
        ):
            create = client.chat.completions.create
            for i in range(n):
                wait = i * interval - server.now()
                if wait > 0:
                    time.sleep(wait * scale)
                current_request.set(i)
                trace.issued += 1
                stream = share > 0 and stream_rng.random() < share
                send_sync(create, i, model, stream, trace.endings, server.now)
                progress.tick(i + 1)
        for c in clients:
            c.close()
        virtual = server.now()
    return trace, virtual


#: Tolerance of waits measured over real sockets (real seconds): below, above.
SERVER_WAIT_TOLERANCE = (0.003, 0.100)


def execute(job: Job, *, show_progress: bool = True) -> JobResult:
    """Run one job in this process: traffic, then checks, then the plot extracts."""
    from .mutants import MUTANTS

    scenario = job.scenario
    started = time.perf_counter()
    progress = Progress(job.label, job.n, show_progress)
    mutant = MUTANTS[job.mutant] if job.mutant else None
    runner = {"sync": run_sync, "async": run_async, "server": run_server}[scenario.mode]
    try:
        with quiet_runtime_logs(), contextlib.ExitStack() as stack:
            extra = stack.enter_context(mutant.apply()) if mutant else {}
            trace, virtual = runner(scenario, job.n, job.seed, extra=extra, progress=progress)
    except Exception as exc:  # a crash is reported as a failed job, not a traceback
        import traceback

        return JobResult(
            job.label,
            scenario.name,
            job.mutant,
            job.seed,
            job.n,
            [],
            time.perf_counter() - started,
            0.0,
            0,
            error="".join(traceback.format_exception(exc)),
        )
    tolerance = None
    if scenario.mode == "server":
        tolerance = (
            SERVER_WAIT_TOLERANCE[0] / scenario.time_scale,
            SERVER_WAIT_TOLERANCE[1] / scenario.time_scale,
        )
    if job.trace_dir:
        write_trace(
            Path(job.trace_dir) / f"{job.label.replace(' ', '_').replace(':', '')}.jsonl", trace
        )
    checker = Checker(scenario, trace, job.seed, tolerance=tolerance)
    names = job.checks or scenario.checks
    results = checker.run(names)
    if scenario.selector_draws and job.mutant in (None, "weights_skewed"):
        results.extend(selector_checks(scenario, job, extra_mutant=mutant))
    for r in results:
        r.mutant = job.mutant
    plot = {} if job.mutant else plot_extract(scenario, trace, checker)
    return JobResult(
        job.label,
        scenario.name,
        job.mutant,
        job.seed,
        job.n,
        results,
        time.perf_counter() - started,
        virtual,
        len(trace.http),
        plot,
        trace.max_in_flight,
    )


def write_trace(path: Path, trace: Trace) -> None:
    """One JSON line per attempt: what the provider saw, joined with what the runtime reported."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    reported = trace.attempts_by_request()
    with path.open("w", encoding="utf-8") as f:
        for request, recs in sorted(trace.http_by_request().items()):
            atts = reported.get(request, [])
            previous_end = None
            for i, rec in enumerate(recs):
                att = atts[i] if i < len(atts) else None
                f.write(
                    json.dumps(
                        {
                            "request": request,
                            "t": round(rec.start, 6),
                            "t_end": round(rec.end, 6),
                            "model": rec.key,
                            "provider": rec.provider,
                            "attempt": att.attempt if att else None,
                            "outcome": rec.outcome,
                            "source": rec.source,
                            "retry_after": rec.retry_after,
                            "wait_before": None
                            if previous_end is None
                            else round(rec.start - previous_end, 6),
                            "runtime_wait_before": att.wait_before if att else None,
                            "decision": att.decision if att else None,
                        }
                    )
                    + "\n"
                )
                previous_end = rec.end


def selector_checks(scenario: Scenario, job: Job, *, extra_mutant: Any) -> list[CheckResult]:
    """Checks 1 and 2 at their full power-analysis size, on the runtime's own selector.

    The draws the SDK path makes come from the same object (``RetryManager``'s selector, through
    ``route`` for the first choice and ``get_next_model`` for fallbacks); here it is called
    directly, so 90 thousand draws take well under a second instead of minutes of SDK overhead.
    """
    import notdiamond

    from .checks import normalised

    if scenario.weights is None or job.mutant not in (None, "weights_skewed"):
        return []
    weights = dict(zip(scenario.order, scenario.weights, strict=True))
    expected = normalised(weights)
    clients = _sdk_clients(scenario.provider_set(), "http://x.invalid", api_key="x")
    seed = derive_seed(job.seed, "selector")
    out = []
    with quiet_runtime_logs(), contextlib.ExitStack() as stack:
        if extra_mutant is not None:
            stack.enter_context(extra_mutant.apply())
        manager = stack.enter_context(notdiamond.init(clients, **init_kwargs(scenario), seed=seed))
        out.append(
            _selector_check(
                "first_choice_weights",
                manager._selector.first,
                expected,
                scenario,
                seed,
                "first choices drawn by the runtime's selector",
            )
        )
        failing = max(weights, key=lambda k: weights[k])
        rest = normalised({k: w for k, w in weights.items() if k != failing})
        if len(rest) < 2:  # one model left: a fallback is no draw
            return out

        def fallback() -> str:
            key = manager.get_next_model([failing])
            assert key is not None
            return key

        out.append(
            _selector_check(
                "fallback_weights",
                fallback,
                rest,
                scenario,
                seed,
                f"fallback draws after {failing} failed (get_next_model)",
                failed=[failing],
            )
        )
    return out


def _selector_check(
    name: str,
    draw: Callable[[], str],
    expected: dict[str, float],
    scenario: Scenario,
    seed: int,
    drawn: str,
    **details: Any,
) -> CheckResult:
    """A chi-square check of ``draw()`` against ``expected``, drawn as often as the power analysis
    asks; ``drawn`` says what the draws are, ``details`` go between the table and ``df``."""
    from .checks import goodness_of_fit, weight_table

    required = power.chi2_sample_size(list(expected.values()))
    counts: dict[str, int] = {}
    for _ in range(required):
        k = draw()
        counts[k] = counts.get(k, 0) + 1
    chi2, p, n = goodness_of_fit(counts, expected)
    return CheckResult(
        name,
        scenario.name,
        p >= power.ALPHA,
        chi2,
        p,
        n,
        seed,
        "chi-square",
        path="selector",
        required_n=required,
        summary=f"{n} {drawn}: chi2={chi2:.2f}, p={p:.3g}",
        details={
            "table": weight_table(counts, expected),
            **details,
            "df": len(expected) - 1,
        },
    )


def plot_extract(scenario: Scenario, trace: Trace, checker: Checker) -> dict[str, Any]:
    """The small pieces of a trace the report plots (a trace itself can be 100k records)."""
    rng = random.Random(1)
    latencies: dict[str, list[float]] = {}
    for rec in trace.http:
        if rec.outcome == "ok" or rec.source == "mix":
            latencies.setdefault(rec.key, []).append(rec.latency)
    for k, v in latencies.items():
        if len(v) > 4000:
            latencies[k] = rng.sample(v, 4000)
    timeline = []
    by_request = checker.http
    eventful = [r for r, recs in by_request.items() if len(recs) > 1][:30]
    if len(eventful) < 30:
        eventful += [r for r in by_request if r not in eventful][: 30 - len(eventful)]
    for r in sorted(eventful):
        t0 = by_request[r][0].start
        timeline.append(
            {
                "request": r,
                "attempts": [(x.key, x.start - t0, x.end - t0, x.outcome) for x in by_request[r]],
            }
        )
    pairs = checker.wait_pairs()
    jitter = scenario.jitter
    draws = []
    if jitter > 0:
        draws = [
            (1 - o / e) / jitter
            for e, o, governed, k, _, _ in pairs
            if k == "retry" and not governed and e > 0
        ]
        if len(draws) > 4000:
            draws = rng.sample(draws, 4000)
    if len(pairs) > 3000:
        pairs = rng.sample(pairs, 3000)
    dists = {}
    for key, f in scenario.providers.items():
        dists[key] = {
            "kind": f.latency.kind,
            "a": f.latency.a,
            "b": f.latency.b,
            "timeout": scenario.timeouts[key],
        }
    return {
        "latencies": latencies,
        "timeline": timeline,
        "waits": pairs,
        "jitter_draws": draws,
        "latency_model": dists,
    }


# -- many jobs -----------------------------------------------------------------------------
def _execute_quiet(job: Job) -> JobResult:
    return execute(job, show_progress=True)


def run_jobs(
    jobs: list[Job],
    *,
    workers: int | None = None,
    on_done: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run jobs, longest first, over ``workers`` processes (default: the cores available)."""
    if workers is None:
        workers = max(
            1,
            min(
                len(jobs),
                len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1,
            ),
        )
    ordered = sorted(jobs, key=lambda j: -j.cost)
    results: list[JobResult] = []
    if workers <= 1:
        for job in ordered:
            res = execute(job)
            results.append(res)
            if on_done:
                on_done(res)
        return results
    import multiprocessing as mp

    ctx = mp.get_context("fork") if sys.platform.startswith("linux") else mp.get_context()
    with ctx.Pool(workers, maxtasksperchild=4) as pool:
        for res in pool.imap_unordered(_execute_quiet, ordered, chunksize=1):
            results.append(res)
            if on_done:
                on_done(res)
    return results


def estimated_cost(jobs: list[Job]) -> float:
    return math.fsum(j.cost for j in jobs)
