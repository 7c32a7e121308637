"""notdiamond.RedisState against a real Redis server: shared breakers and budgets, outages, restarts.

Several ``RedisState`` objects on one server stand for several processes (each has its own instance
id, worker and local state); the last test runs real processes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
import redis
import redis.asyncio

import notdiamond
from notdiamond._health.circuit import Transition
from notdiamond._health.redis_state import RedisState
from tests.fakes import USER, FakeProvider, SleepRecorder, status
from tests.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]

KEY = "openai/gpt-4o"
OTHER = "azure/gpt-4o"
PRIMARY, BACKUP = KEY, OTHER


@dataclass(frozen=True)
class Breaker:
    consecutive_failures: int = 5
    failure_ratio: float = 0.5
    minimum_calls: int = 20
    window: float = 30.0
    break_duration: float = 30.0
    max_break_duration: float = 300.0


@dataclass(frozen=True)
class Budget:
    ratio: float = 0.2
    min_per_second: float = 0.0
    window: float = 10.0


@pytest.fixture
def states(redis_server: RedisServer) -> Iterator[list[RedisState]]:
    """Stand-ins for processes: call ``make()`` for another RedisState on the test's server."""
    made: list[RedisState] = []
    yield made
    for state in made:
        state.close()


def make(
    made: list[RedisState], server: RedisServer, *, prefix: str = "nd:", **kwargs: float
) -> RedisState:
    kwargs.setdefault("sync_interval", 0.1)
    kwargs.setdefault("timeout", 2.0)  # generous: a loaded CI machine must not look like an outage
    state = RedisState(server.url, prefix=prefix, **kwargs)  # type: ignore[arg-type]
    made.append(state)
    return state


def raw(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=2)


def sync_all(*states: RedisState) -> None:
    """One sync of each, in this order (each waits for a round that began after the call)."""
    for state in states:
        assert state.sync()


def fail(circuit: object, times: int, now: float) -> None:
    for _ in range(times):
        circuit.failure(now)  # type: ignore[attr-defined]


def test_one_process_opening_makes_the_others_skip(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    a, b = make(states, redis_server), make(states, redis_server)
    seen: list[Transition] = []
    ca = a.circuit(KEY, Breaker())
    cb = b.circuit(KEY, Breaker(), on_transition=seen.append)
    sync_all(a, b)
    now = time.monotonic()
    fail(ca, 5, now)
    assert not ca.is_closed()
    assert cb.admit(now) == ("admit", 0)  # no round trip on the call: B learns at its next sync
    sync_all(a, b)
    later = time.monotonic()
    assert cb.admit(later) == ("skip", 0)
    assert 29.0 < cb.until - later <= 30.0  # the remaining break, on B's own clock
    assert [(t.before, t.after, t.reason, t.consecutive) for t in seen] == [
        ("closed", "open", "consecutive_failures", 5)
    ]
    assert 29.0 < seen[0].break_duration <= 30.0  # type: ignore[operator]


def test_other_prefix_is_not_shared(redis_server: RedisServer, states: list[RedisState]) -> None:
    a = make(states, redis_server, prefix="one:")
    b = make(states, redis_server, prefix="two:")
    ca, cb = a.circuit(KEY, Breaker()), b.circuit(KEY, Breaker())
    fail(ca, 5, time.monotonic())
    sync_all(a, b)
    assert cb.is_closed()


def test_window_counts_and_runs_add_up_across_processes(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    a, b = make(states, redis_server), make(states, redis_server)
    ca, cb = a.circuit(KEY, Breaker()), b.circuit(KEY, Breaker())
    now = time.monotonic()
    fail(ca, 3, now)
    sync_all(a, b)
    health = cb.health(time.monotonic())
    assert (health.consecutive, health.failures, health.calls) == (3, 3, 3)
    fail(cb, 2, time.monotonic())  # 3 + 2 in a row across the fleet
    assert not cb.is_closed()
    assert cb.health(time.monotonic()).last_opened.consecutive == 5  # type: ignore[union-attr]


def test_a_success_elsewhere_ends_the_run(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    a, b = make(states, redis_server), make(states, redis_server)
    ca, cb = a.circuit(KEY, Breaker()), b.circuit(KEY, Breaker())
    fail(ca, 4, time.monotonic())
    assert a.sync()
    cb.success(time.monotonic())
    sync_all(b, a)
    fail(ca, 1, time.monotonic())
    assert ca.is_closed()
    assert ca.health(time.monotonic()).consecutive == 1


def test_failure_ratio_over_the_fleet(redis_server: RedisServer, states: list[RedisState]) -> None:
    options = Breaker(consecutive_failures=100, minimum_calls=10, failure_ratio=0.5)
    a, b = make(states, redis_server), make(states, redis_server)
    ca, cb = a.circuit(KEY, options), b.circuit(KEY, options)
    now = time.monotonic()
    for _ in range(5):
        ca.success(now)
    for _ in range(4):
        ca.failure(now)
        ca.success(now)
    sync_all(a, b)
    assert cb.health(now).calls == 13
    cb.failure(now)  # 5 failed of 14: below half
    assert cb.is_closed()
    cb.failure(now)
    cb.failure(now)  # 7 of 16: still below
    assert cb.is_closed()
    cb.failure(now)  # 8 of 17 ... not yet
    cb.failure(now)  # 9 of 18 = 0.5: opens
    assert not cb.is_closed()
    assert cb.health(now).last_opened.reason == "failure_ratio"  # type: ignore[union-attr]


def test_success_path_makes_no_round_trip(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    a = make(states, redis_server, sync_interval=30.0)
    circuit = a.circuit(KEY, Breaker())
    budget = a.budget(KEY, Budget())
    assert a.sync()
    server = raw(redis_server)

    def processed() -> int:
        return int(server.info("stats")["total_commands_processed"])

    before = processed()
    now = time.monotonic()
    for _ in range(1000):
        assert circuit.is_closed()
        assert circuit.admit(now) == ("admit", 0)
        budget.first_attempt(now)
        circuit.success(now)
    assert processed() == before + 1  # the INFO of this check only
    assert a.sync()  # one flush carries them all
    b = make(states, redis_server)
    other = b.circuit(KEY, Breaker())
    other_budget = b.budget(KEY, Budget())
    assert b.sync()
    assert other.health(now).calls == 1000
    assert other_budget.health(now).first_attempts == 1000


def test_budget_is_spent_by_the_fleet(redis_server: RedisServer, states: list[RedisState]) -> None:
    a, b = make(states, redis_server), make(states, redis_server)
    ba, bb = a.budget(KEY, Budget(ratio=0.2)), b.budget(KEY, Budget(ratio=0.2))
    now = time.monotonic()
    for _ in range(10):
        ba.first_attempt(now)
    for _ in range(10):
        bb.first_attempt(now)
    sync_all(a, b, a)
    assert ba.health(now).first_attempts == 20  # 0.2 * 20 = 4 retries for the fleet
    assert [ba.try_retry(now) for _ in range(3)] == [True, True, True]
    sync_all(a, b)
    assert [bb.try_retry(now) for _ in range(3)] == [True, False, False]


def test_one_probe_at_a_time_across_processes(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    options = Breaker(break_duration=1.0, max_break_duration=4.0)
    fleet = [make(states, redis_server, probe_lease=30.0) for _ in range(3)]
    circuits = [s.circuit(KEY, options) for s in fleet]
    fail(circuits[0], 5, time.monotonic())
    for s in fleet:
        assert s.sync()
    time.sleep(max(0.0, circuits[1].until - time.monotonic()) + 0.05)
    decisions = [c.admit(time.monotonic()) for c in circuits]
    assert [d for d, _ in decisions] == ["skip"] * 3  # each asked for the lease
    for s in fleet:
        assert s.sync()
    decisions = [c.admit(time.monotonic()) for c in circuits]
    probes = [(i, token) for i, (d, token) in enumerate(decisions) if d == "probe"]
    assert len(probes) == 1, decisions
    winner, token = probes[0]
    losers = [c for i, c in enumerate(circuits) if i != winner]
    assert all(c.admit(time.monotonic())[0] == "skip" for c in losers)
    for s in fleet:
        assert s.sync()
    assert all(c.admit(time.monotonic())[0] == "skip" for c in losers)  # the lease is held
    # The probe fails: the break doubles, for every process.
    failed = time.monotonic()
    circuits[winner].failure(failed, token=token)
    assert fleet[winner].sync()  # published (at once, by its worker) ...
    for s in fleet:
        assert s.sync()  # ... and read by the others at their next sync
    now = time.monotonic()
    for circuit in circuits:
        health = circuit.health(now)
        assert health.state == "open"
        assert 2.0 - (now - failed) - 0.1 < health.until - now <= 2.0  # type: ignore[operator]
        assert health.next_break == pytest.approx(4.0)
    # After the doubled break, a probe that succeeds closes it everywhere and resets the doubling.
    time.sleep(max(0.0, max(c.until for c in circuits) - time.monotonic()) + 0.05)
    for c in circuits:
        c.admit(time.monotonic())
    for s in fleet:
        assert s.sync()
    decisions = [c.admit(time.monotonic()) for c in circuits]
    probes = [(i, token) for i, (d, token) in enumerate(decisions) if d == "probe"]
    assert len(probes) == 1, decisions
    circuits[probes[0][0]].success(time.monotonic(), token=probes[0][1])
    assert fleet[probes[0][0]].sync()
    for s in fleet:
        assert s.sync()
    for circuit in circuits:
        assert circuit.is_closed()
        assert circuit.health(time.monotonic()).next_break == pytest.approx(1.0)


def _open_until_half_open(fleet: list[RedisState], options: Breaker) -> list[object]:
    circuits = [s.circuit(KEY, options) for s in fleet]
    fail(circuits[0], 5, time.monotonic())
    sync_all(*fleet)
    time.sleep(max(0.0, max(c.until for c in circuits) - time.monotonic()) + 0.05)  # type: ignore[attr-defined]
    return circuits


def test_an_unused_lease_is_given_back(redis_server: RedisServer, states: list[RedisState]) -> None:
    a, b = make(states, redis_server), make(states, redis_server)
    ca, cb = _open_until_half_open([a, b], Breaker(break_duration=0.3, max_break_duration=1.0))
    assert ca.admit(time.monotonic()) == ("skip", 0)  # type: ignore[attr-defined]
    sync_all(a)  # A holds the lease now, but no call of A comes to take it
    assert cb.admit(time.monotonic()) == ("skip", 0)  # type: ignore[attr-defined]
    sync_all(b)
    assert cb.admit(time.monotonic()) == ("skip", 0)  # type: ignore[attr-defined]
    time.sleep(2 * a.sync_interval + 0.1)
    sync_all(a)  # A gave it back ...
    assert cb.admit(time.monotonic()) == ("skip", 0)  # type: ignore[attr-defined]
    sync_all(b)  # ... and B, asking again, gets it
    assert cb.admit(time.monotonic())[0] == "probe"  # type: ignore[attr-defined]


def test_no_round_trip_per_admission_while_another_process_probes(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    a, b = make(states, redis_server), make(states, redis_server)
    ca, cb = _open_until_half_open([a, b], Breaker(break_duration=0.3, max_break_duration=1.0))
    ca.admit(time.monotonic())  # type: ignore[attr-defined]
    sync_all(a)
    assert ca.admit(time.monotonic())[0] == "probe"  # type: ignore[attr-defined]
    server = raw(redis_server)

    def evals() -> int:
        return int(server.info("commandstats").get("cmdstat_eval", {}).get("calls", 0))

    before, began = evals(), time.monotonic()
    for _ in range(200):  # B's calls keep meeting the half-open model for about a second
        assert cb.admit(time.monotonic()) == ("skip", 0)  # type: ignore[attr-defined]
        time.sleep(0.005)
    seconds = time.monotonic() - began
    # One script per process per sync interval (plus B's first ask), not one per admission.
    assert evals() - before <= 2 * (seconds / 0.1 + 2)


def test_a_crashed_probers_lease_expires(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    a = make(states, redis_server, probe_lease=0.5)
    b = make(states, redis_server, probe_lease=0.5)
    ca, cb = _open_until_half_open([a, b], Breaker(break_duration=0.3, max_break_duration=1.0))
    ca.admit(time.monotonic())  # type: ignore[attr-defined]
    sync_all(a)
    assert ca.admit(time.monotonic())[0] == "probe"  # type: ignore[attr-defined]
    a.close()  # A dies with its probe in flight: nothing released
    cb.admit(time.monotonic())  # type: ignore[attr-defined]
    sync_all(b)
    assert cb.admit(time.monotonic()) == ("skip", 0)  # type: ignore[attr-defined]
    time.sleep(0.55)  # the lease's TTL
    cb.admit(time.monotonic())  # type: ignore[attr-defined]
    sync_all(b)
    assert cb.admit(time.monotonic())[0] == "probe"  # type: ignore[attr-defined]


def test_everything_expires(redis_server: RedisServer, states: list[RedisState]) -> None:
    options = Breaker(window=0.5, break_duration=0.3, max_break_duration=0.6)
    a = make(states, redis_server, probe_lease=0.4)
    circuit, budget = a.circuit(KEY, options), a.budget(KEY, Budget(window=0.5))
    now = time.monotonic()
    budget.first_attempt(now)
    budget.try_retry(now)
    circuit.success(now)
    circuit.failure(now)
    other = a.circuit(OTHER, options)
    fail(other, 5, now)
    assert a.sync()
    time.sleep(0.35)
    other.admit(time.monotonic())  # half-open: asks for the lease
    assert a.sync()
    server = raw(redis_server)
    keys = sorted(k.decode() for k in server.keys("nd:*"))
    assert f"nd:cb:{OTHER}:probe" in keys
    assert all(server.pttl(k) > 0 for k in keys), {k: server.pttl(k) for k in keys}
    a.close()
    time.sleep(1.3)
    assert sorted(k.decode() for k in server.keys("nd:*")) == ["nd:epoch"]  # a day's TTL


def test_calls_never_wait_on_a_stopped_or_frozen_redis_and_warn_once(
    redis_server: RedisServer, states: list[RedisState], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notdiamond")
    a = make(states, redis_server, sync_interval=0.1, timeout=0.2)
    circuit = a.circuit(KEY, Breaker(break_duration=0.2, max_break_duration=0.4))
    budget = a.budget(KEY, Budget())
    assert a.sync()
    assert a.connected
    for outage in (redis_server.stop, redis_server.freeze):
        outage()
        stopped = time.monotonic()
        slowest = 0.0
        while a.connected and time.monotonic() - stopped < 3.0:
            began = time.perf_counter()
            now = time.monotonic()
            circuit.is_closed()
            circuit.admit(now)
            circuit.success(now)
            budget.first_attempt(now)
            budget.try_retry(now)
            slowest = max(slowest, time.perf_counter() - began)
            time.sleep(0.002)
        detected = time.monotonic() - stopped
        assert not a.connected
        assert detected <= a.sync_interval + a.timeout + 0.5  # the documented bound, plus slack
        assert slowest < 0.05  # far below the 0.2 s a call would wait on Redis
        time.sleep(0.5)  # several failing syncs: still one warning
        if outage == redis_server.freeze:
            redis_server.thaw()
        else:
            redis_server.start()
        assert a.sync()
        assert a.sync()
        assert a.connected
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r for r in caplog.records if "reachable again" in r.getMessage()]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]  # one per outage
    assert len(infos) == 2


def test_local_fallback_during_an_outage_and_resync_after_restart(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    options = Breaker(break_duration=0.3, max_break_duration=2.0)
    a, b = make(states, redis_server), make(states, redis_server)
    ca, cb = a.circuit(KEY, options), b.circuit(KEY, options)
    fail(ca, 3, time.monotonic())
    sync_all(a, b)
    assert cb.health(time.monotonic()).consecutive == 3
    redis_server.stop()
    time.sleep(0.6)
    assert not a.connected
    assert not b.connected
    # Local state only: the shared counts are dropped, B's own two failures do not open it ...
    fail(cb, 2, time.monotonic())
    assert cb.is_closed()
    # ... A opens on its own, and probes locally after the break (no lease to be had).
    fail(ca, 5, time.monotonic())
    assert not ca.is_closed()
    time.sleep(0.35)
    assert ca.admit(time.monotonic())[0] == "probe"
    # Redis comes back empty (no persistence): A's open breaker is published again; B adopts it.
    redis_server.start()
    sync_all(a, a, b, b)
    server = raw(redis_server)
    assert server.exists(f"nd:cb:{KEY}") == 1
    assert cb.health(time.monotonic()).state in ("open", "half_open")


def test_restart_between_syncs_republishes_open_breakers(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    a = make(states, redis_server, sync_interval=5.0)
    ca = a.circuit(KEY, Breaker())
    fail(ca, 5, time.monotonic())
    assert a.sync()
    redis_server.restart()  # between two syncs: the data is gone, maybe unnoticed by the client
    sync_all(a, a, a)
    server = raw(redis_server)
    assert 28_000 < server.pttl(f"nd:cb:{KEY}:break") <= 30_000
    b = make(states, redis_server)
    cb = b.circuit(KEY, Breaker())
    assert b.sync()
    assert not cb.is_closed()


def test_credentials_never_in_repr_or_logs(
    redis_server: RedisServer, states: list[RedisState], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raw(redis_server).config_set("requirepass", "s3cret-pass")
    url = f"redis://:s3cret-pass@127.0.0.1:{redis_server.port}/0"
    state = RedisState(url, prefix="nd:", sync_interval=0.1, timeout=0.2)
    states.append(state)
    assert "s3cret" not in repr(state)
    circuit = state.circuit(KEY, Breaker())
    fail(circuit, 5, time.monotonic())
    assert state.sync()
    assert state.connected
    redis_server.stop()
    time.sleep(0.5)
    assert not state.connected
    assert caplog.records
    assert all("s3cret" not in r.getMessage() for r in caplog.records)
    assert all("s3cret" not in str(r.args) for r in caplog.records)


def test_invalid_arguments_name_the_fix(redis_server: RedisServer) -> None:
    with pytest.raises(TypeError, match=r"redis\.Redis or redis\.asyncio\.Redis"):
        RedisState(42)
    with pytest.raises(ValueError, match=r"redis://"):
        RedisState("localhost:6379")
    with pytest.raises(ValueError, match=r"sync_interval=1.0"):
        RedisState(redis_server.url, sync_interval=0)
    with pytest.raises(ValueError, match="prefix"):
        RedisState(redis_server.url, prefix="")
    with pytest.raises(TypeError, match="prefix"):
        RedisState(redis_server.url, prefix=b"nd:")  # type: ignore[arg-type]


def test_asyncio_client_shares_with_a_sync_one(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    b = make(states, redis_server)
    cb = b.circuit(KEY, Breaker())

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=1)
        a = RedisState(client, prefix="nd:", sync_interval=0.05)
        ca = a.circuit(KEY, Breaker())
        assert ca.is_closed()  # the first use inside the loop starts its worker task
        fail(ca, 5, time.monotonic())
        await asyncio.sleep(0.2)
        assert await asyncio.to_thread(b.sync)
        assert not cb.is_closed()
        a.close()
        await client.aclose()

    asyncio.run(scenario())


def _forked_child(state: RedisState, results: object) -> None:
    circuit = state.circuit(KEY, Breaker())  # the parent's object, inherited by the fork
    fail(circuit, 5, time.monotonic())
    results.put((state.instance, state.sync(), state.connected))  # type: ignore[attr-defined]


def test_a_forked_child_gets_its_own_worker(
    redis_server: RedisServer, states: list[RedisState]
) -> None:
    parent = make(states, redis_server)
    circuit = parent.circuit(KEY, Breaker())
    sync_all(parent)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_forked_child, args=(parent, results))
    child.start()
    instance, synced, connected = results.get(timeout=30)
    child.join(10)
    assert (synced, connected) == (True, True)
    assert instance != parent.instance  # its own lease identity
    sync_all(parent)
    assert not circuit.is_closed()  # the child's opening reached the parent through Redis


# -- real processes -------------------------------------------------------------------------------

SYNC_INTERVAL = 0.25
BREAK = 1.0


def _worker(url: str, ready: object, go: object, results: object, index: int) -> None:
    state = RedisState(url, prefix="mp:", sync_interval=SYNC_INTERVAL, timeout=0.5)
    circuit = state.circuit(KEY, Breaker(break_duration=BREAK, max_break_duration=4.0))
    assert state.sync()
    ready.put(index)  # type: ignore[attr-defined]
    go.wait(10)  # type: ignore[attr-defined]
    first_skip = None
    probes: list[float] = []
    closed_again = None
    end = time.monotonic() + 4.0
    while time.monotonic() < end:
        now = time.monotonic()
        decision, token = circuit.admit(now)
        if decision == "skip" and first_skip is None:
            first_skip = now
        if decision == "probe":
            probes.append(now)
            time.sleep(0.3)  # the probe's attempt in flight
            circuit.success(time.monotonic(), token)
        if decision == "admit" and probes == [] and first_skip is not None and closed_again is None:
            closed_again = now
        time.sleep(0.005)
    state.close()
    results.put((index, first_skip, probes, closed_again))  # type: ignore[attr-defined]


def test_four_processes_skip_within_sync_interval_and_probe_once(redis_server: RedisServer) -> None:
    # Forkserver with this module preloaded: each worker starts without re-importing the SDK.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    workers = [
        context.Process(target=_worker, args=(redis_server.url, ready, go, results, i))
        for i in range(4)
    ]
    for w in workers:
        w.start()
    try:
        for _ in workers:
            ready.get(timeout=60)
        go.set()
        time.sleep(0.3)
        opener = RedisState(redis_server.url, prefix="mp:", sync_interval=SYNC_INTERVAL)
        circuit = opener.circuit(KEY, Breaker(break_duration=BREAK, max_break_duration=4.0))
        fail(circuit, 5, time.monotonic())
        opened = time.monotonic()
        assert opener.sync()
        outcomes = [results.get(timeout=30) for _ in workers]
        opener.close()
    finally:
        for w in workers:
            w.join(10)
            if w.is_alive():
                w.kill()
    lags = [first_skip - opened for _, first_skip, _, _ in outcomes]
    # Published at once, read at each process's next sync: within sync_interval (plus a round trip
    # and scheduling on a loaded 2-core machine).
    assert all(lag is not None and lag <= SYNC_INTERVAL + 0.15 for lag in lags), lags
    probes = sorted(t for _, _, times, _ in outcomes for t in times)
    assert len(probes) == 1, outcomes  # one probe for the fleet; it succeeded and closed it
    assert probes[0] - opened >= BREAK - 0.05
    # The probe's success (0.3 s after it began) closes it for the others within sync_interval.
    closed = [again for _, _, times, again in outcomes if not times]
    assert len(closed) == 3
    assert all(t is not None and t - (probes[0] + 0.3) <= SYNC_INTERVAL + 0.15 for t in closed), [
        None if t is None else t - probes[0] - 0.3 for t in closed
    ]


# -- end to end, through notdiamond.init and the real SDK -----------------------------------------


def test_init_state_option_shares_the_breaker_between_managers(
    redis_server: RedisServer, states: list[RedisState], fake: FakeProvider, sleeps: SleepRecorder
) -> None:
    """Two managers (as two processes would have) on one Redis: A's opening makes B skip."""
    breaker = notdiamond.CircuitBreaker(consecutive_failures=3, break_duration=10.0)
    managers = []
    clients = []
    for _ in range(2):
        state = make(states, redis_server, prefix="e2e:")
        client = fake.openai()
        managers.append(
            notdiamond.init(
                [client, fake.azure()],
                models=[PRIMARY, BACKUP],
                max_retries=2,
                backoff=1.0,
                clock=sleeps.clock,
                sleep=sleeps,
                circuit_breaker=breaker,
                state=state,
            )
        )
        clients.append(client)
    a, b = states
    fake.always(PRIMARY, status(503), 3)
    for _ in range(2):
        clients[0].chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == [PRIMARY, PRIMARY, BACKUP, PRIMARY, BACKUP]  # opened on the third
    sync_all(a, b)
    sent = len(fake.sent)
    for _ in range(3):
        reply = clients[1].chat.completions.create(model="notdiamond", messages=USER)
        assert reply.model == "gpt-4o"
    assert fake.keys()[-3:] == [BACKUP] * 3  # B never tried the dead primary
    assert len(fake.sent) == sent + 3
    health = managers[1].health()[PRIMARY]
    assert health.state == "open"
    assert a.clock == sleeps.clock  # init bound the manager's clock
    # Nothing in Redis names an API key or the messages: only the prefix and the model key.
    server = raw(redis_server)
    stored = []
    for name in server.keys("*"):
        stored.append(name.decode())
        kind = server.type(name).decode()
        value = server.hgetall(name) if kind == "hash" else {b"": server.get(name)}
        stored += [f"{k!r}{v!r}" for k, v in value.items()]
    text = " ".join(stored)
    assert "secret" not in text
    assert "sk-" not in text
    assert "Hello" not in text
    assert {name.split(":")[0] for name in stored if name.startswith("e2e")} == {"e2e"}
    assert all(k.decode().startswith("e2e:") for k in server.keys("*"))
    for manager in managers:
        manager.close()


def test_state_option_is_validated(fake: FakeProvider) -> None:
    with pytest.raises(TypeError, match=r"notdiamond\.RedisState"):
        notdiamond.init([fake.openai()], models=[PRIMARY], state="redis://localhost")  # type: ignore[arg-type]
    client = fake.openai()
    state = RedisState(redis.asyncio.Redis.from_url("redis://127.0.0.1:1/0"))
    with pytest.raises(TypeError, match=r"redis\.Redis client or a Redis URL"):
        notdiamond.init([client], models=[PRIMARY], circuit_breaker=True, state=state)
    assert type(client) is openai.OpenAI  # refused: nothing patched


def test_async_managers_share_through_an_asyncio_redis_client(
    redis_server: RedisServer, fake: FakeProvider
) -> None:
    """AsyncOpenAI clients with a redis.asyncio client, init outside the loop (as at import time):
    the worker starts as a task on the loop of the first call."""
    breaker = notdiamond.CircuitBreaker(consecutive_failures=2, break_duration=30.0)
    clients, states, redis_clients = [], [], []
    for _ in range(2):
        redis_client = redis.asyncio.Redis.from_url(redis_server.url, socket_timeout=2)
        state = RedisState(redis_client, prefix="aio:", sync_interval=0.05, timeout=2.0)
        client = fake.async_openai()
        notdiamond.init(
            [client, fake.async_azure()],
            models=[PRIMARY, BACKUP],
            max_retries=1,
            circuit_breaker=breaker,
            state=state,
        )
        clients.append(client)
        states.append(state)
        redis_clients.append(redis_client)
    assert all(state._worker_idle for state in states)  # no loop yet: no worker yet

    async def run() -> None:
        fake.always(PRIMARY, status(500), 2)
        for _ in range(2):  # two single-attempt failures open it in the first manager
            await clients[0].chat.completions.create(model="notdiamond", messages=USER)
        assert fake.keys() == [PRIMARY, BACKUP, PRIMARY, BACKUP]
        assert await clients[1].chat.completions.create(model="notdiamond", messages=USER)
        assert fake.keys()[-1] == PRIMARY  # the second had not heard yet (it has no round trip)
        await asyncio.sleep(0.3)  # a few sync intervals of both workers, on this loop
        for _ in range(3):
            await clients[1].chat.completions.create(model="notdiamond", messages=USER)
        assert fake.keys()[-3:] == [BACKUP] * 3
        assert await redis_clients[0].exists(f"aio:cb:{PRIMARY}:break") == 1
        for state, redis_client in zip(states, redis_clients, strict=True):
            state.close()
            await redis_client.aclose()

    asyncio.run(run())
