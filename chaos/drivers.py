"""Traffic drivers: patch SDK clients with ``notdiamond.init`` and send one scenario's requests.

One driver per mode: :func:`drive_sync` (sync clients, in-process transport, virtual clock),
:func:`drive_async` (async clients on a virtual-time event loop) and :func:`drive_server` (sync
clients over real sockets to the loopback server). Each returns the run's :class:`Trace` and the
virtual seconds it simulated; what the checks make of the trace is not their business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from .clock import VirtualClock, run_virtual
from .monkeypatch import swapped
from .scenario import Scenario
from .trace import (
    CALLER_MESSAGES,
    REQUEST_HEADER,
    Ending,
    Trace,
    current_request,
    error_ending,
    response_ending,
    stream_error_ending,
)
from .transport import FakeProvider, make_clients, make_transports, sdk_http_module

#: Seed offset of the generator that decides which requests are streamed.
_STREAM_SEED = 17


def stream_draws(seed: int) -> random.Random:
    """The generator that decides which requests of a run with ``seed`` are streamed (the
    plain-SDK baseline draws the same, so both stream the same requests)."""
    return random.Random(seed + _STREAM_SEED)


def fake_sync_clients(
    scenario: Scenario, seed: int, trace: Trace
) -> tuple[VirtualClock, list[Any]]:
    """Sync SDK clients of the scenario's providers over the in-process fake provider, whose
    answers advance the returned virtual clock."""
    http = sdk_http_module()
    transport_cls, _ = make_transports(http)
    vc = VirtualClock()
    fake = FakeProvider(scenario.providers, seed, trace, vc.time)
    clients = make_clients(
        scenario.provider_set(),
        is_async=False,
        transport_for=lambda p: transport_cls(fake, p, vc.advance),
        http=http,
    )
    return vc, clients


def fake_async_clients(scenario: Scenario, seed: int, trace: Trace) -> list[Any]:
    """Async SDK clients of the scenario's providers over the in-process fake provider, on the
    running (virtual-time) event loop's clock."""
    http = sdk_http_module()
    _, transport_cls = make_transports(http)
    fake = FakeProvider(scenario.providers, seed, trace, asyncio.get_running_loop().time)
    return make_clients(
        scenario.provider_set(),
        is_async=True,
        transport_for=lambda p: transport_cls(fake, p),
        http=http,
    )


class Progress:
    """Progress lines on stderr for long runs (every 10% or 5 s)."""

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


class Driver(Protocol):
    def __call__(
        self,
        scenario: Scenario,
        n: int,
        seed: int,
        *,
        extra: Mapping[str, Any],
        progress: Progress,
    ) -> tuple[Trace, float]: ...


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


def _client_for(scenario: Scenario, clients: list[Any]) -> Any:
    """The client the traffic goes through: the one of the first model's provider."""
    first = scenario.first_key()
    provider = first.split("/", 1)[0] if first else scenario.order[0].split("/", 1)[0]
    for c in clients:
        is_azure = "Azure" in type(c).__name__
        if (provider == "azure") == is_azure:
            return c
    return clients[0]


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
            chunks = create(
                model=model, messages=CALLER_MESSAGES, stream=True, extra_headers=headers
            )
            read = 0
            try:
                for _ in chunks:
                    read += 1
            except Exception as exc:
                endings.append(stream_error_ending(i, exc, chunks, read, now()))
                return
            endings.append(response_ending(i, chunks, now(), chunks=read))
            return
        else:
            result = create(model=model, messages=CALLER_MESSAGES, extra_headers=headers)
    except Exception as exc:
        endings.append(error_ending(i, exc, now()))
    else:
        endings.append(response_ending(i, result, now()))


def drive_sync(
    scenario: Scenario, n: int, seed: int, *, extra: Mapping[str, Any], progress: Progress
) -> tuple[Trace, float]:
    import notdiamond

    trace = Trace()
    vc, clients = fake_sync_clients(scenario, seed, trace)
    client = _client_for(scenario, clients)
    model = scenario.traffic.model
    stream_rng = stream_draws(seed)
    interval = scenario.traffic.interval
    share = scenario.traffic.stream
    with (
        sdk_sleep_on(vc),
        notdiamond.init(
            clients,
            **scenario.init_kwargs(),
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


def drive_async(
    scenario: Scenario, n: int, seed: int, *, extra: Mapping[str, Any], progress: Progress
) -> tuple[Trace, float]:
    import notdiamond

    trace = Trace()
    interval = scenario.traffic.interval
    share = scenario.traffic.stream
    model = scenario.traffic.model

    async def main() -> float:
        loop = asyncio.get_running_loop()
        clients = fake_async_clients(scenario, seed, trace)
        client = _client_for(scenario, clients)
        stream_rng = stream_draws(seed)
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
                        model=model, messages=CALLER_MESSAGES, stream=True, extra_headers=headers
                    )
                    read = 0
                    try:
                        async for _ in chunks:
                            read += 1
                    except Exception as exc:
                        trace.endings.append(stream_error_ending(i, exc, chunks, read, loop.time()))
                        return
                    trace.endings.append(response_ending(i, chunks, loop.time(), chunks=read))
                    return
                else:
                    result = await create(
                        model=model, messages=CALLER_MESSAGES, extra_headers=headers
                    )
            except Exception as exc:
                trace.endings.append(error_ending(i, exc, loop.time()))
            else:
                trace.endings.append(response_ending(i, result, loop.time()))
            finally:
                in_flight -= 1
                done += 1
                progress.tick(done)

        with notdiamond.init(
            clients,
            **scenario.init_kwargs(),
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


def drive_server(
    scenario: Scenario, n: int, seed: int, *, extra: Mapping[str, Any], progress: Progress
) -> tuple[Trace, float]:
    """End to end: real SDK clients over real sockets to the loopback fake server."""
    import notdiamond

    from .checks.selector import plain_clients
    from .server import LoopbackServer

    trace = Trace()
    scale = scenario.time_scale
    interval = scenario.traffic.interval
    share = scenario.traffic.stream
    model = scenario.traffic.model
    stream_rng = stream_draws(seed)
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
        clients = plain_clients(scenario.provider_set(), server.url, api_key="chaos")
        client = _client_for(scenario, clients)

        def sleep(seconds: float) -> None:
            time.sleep(seconds * scale)

        kwargs = scenario.init_kwargs()
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


def drive_fleet(
    scenario: Scenario, n: int, seed: int, *, extra: Mapping[str, Any], progress: Progress
) -> tuple[Trace, float]:
    """Several processes sharing one Redis and the loopback server (``chaos/fleet.py``)."""
    from .fleet import fleet_driver

    return fleet_driver(scenario, n, seed, extra=extra, progress=progress)


DRIVERS: dict[str, Driver] = {
    "sync": drive_sync,
    "async": drive_async,
    "server": drive_server,
    "fleet": drive_fleet,
}
