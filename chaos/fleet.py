"""A fleet: several worker processes that share one Redis and the loopback fake provider.

:func:`run_fleet` starts a Redis server of its own (:mod:`chaos.redis_server`) and spawns
``fleet.processes`` workers (``multiprocessing``, spawn), ``n // processes`` requests each. Each
worker imports the SDK and the runtime and warms up (one call on a healthy loopback server); then
the loopback fake provider starts (:class:`chaos.server.LoopbackServer`, real sockets,
``time_scale`` 1), every worker builds its clients, its ``notdiamond.RedisState(url, ...)``
(``shared=False``: per-process state, the comparison) and its ``notdiamond.init``, and only then
does the run's clock start and the traffic begin. Each worker records its trace: the attempts and
transitions its runtime reported, how each call ended, and when the runtime logged that Redis went
away or came back.

Time is real: every process and the server read ``time.monotonic()`` (one clock per machine)
from the run's origin, so the provider's records, the workers' transitions and the Redis faults
share one time axis (seconds of the run). Worker ``w`` sends request ``i`` (global id
``w * n + i``) at ``LEAD + (i + w / processes) * interval``, or when its previous call ended.

With ``fleet.redis_down = [kill, start]`` a timer kills the server (SIGKILL) at ``kill`` and starts
it again, empty, on the same port at ``start``. After the traffic, the TTL of every key under the
run's prefix is read back from Redis (``FleetInfo.redis_ttls``) for the expiry check."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .faults import ProviderFaults
from .scenario import Scenario
from .server import LoopbackServer
from .trace import Trace, current_request

#: The traffic starts this long after the workers are told to go.
LEAD: float = 0.2
#: Seconds a worker may take to import the SDK and the runtime (spawned on a busy machine).
START_TIMEOUT: float = 120.0
#: Key of the mutants' ``extra`` options that names a patch to apply inside every worker.
FLEET_PATCH = "_chaos_fleet_patch"


class FleetTransition(NamedTuple):
    """A breaker transition one process's runtime reported (seconds of the run)."""

    process: int
    key: str
    before: str
    after: str
    at: float
    reason: str
    until: float | None


class RedisLog(NamedTuple):
    """A log record about Redis from one process: ``down`` (WARNING) or ``up`` (INFO)."""

    process: int
    kind: str
    at: float


@dataclass
class FleetInfo:
    processes: int
    #: Requests per process: request ``r`` was sent by process ``r // per_process``.
    per_process: int
    shared: bool
    sync_interval: float
    timeout: float
    transitions: list[FleetTransition] = field(default_factory=list)
    logs: list[RedisLog] = field(default_factory=list)
    #: (kill, start) as they really happened, seconds of the run: the times just before the server
    #: was killed and before it was started again (no process can see either earlier).
    redis_down: tuple[float, float] | None = None
    #: After the run: every key under the run's prefix and its PTTL in ms (-1: no TTL).
    redis_ttls: dict[str, int] = field(default_factory=dict)
    #: When the traffic ended (the last call's end), seconds of the run.
    end: float = 0.0
    #: Wall seconds spawning and starting the workers took (not part of the run's time axis).
    startup_s: float = 0.0
    #: Per process (by index): (syncs its RedisState ended, its worker thread alive at
    #: the end of the traffic). Diagnostics for the report.
    syncs: list[tuple[int, bool]] = field(default_factory=list)
    #: The machine's stalls seen by a heartbeat thread of the runner: (at, seconds late).
    stalls: list[tuple[float, float]] = field(default_factory=list)

    def stalled(self, start: float, end: float) -> float:
        """Seconds the machine stalled between ``start`` and ``end`` (heartbeats late)."""
        return sum(late for at, late in self.stalls if start - late <= at < end)

    def process_of(self, request: int) -> int:
        return request // self.per_process


@dataclass
class FleetTrace(Trace):
    """A fleet run's joined trace: every process's attempts and endings (global request ids)."""

    fleet: FleetInfo | None = None


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    scenario: Scenario
    n: int
    seed: int
    redis_url: str | None
    prefix: str
    patch: str | None
    #: A healthy loopback server for the warm-up call.
    warm_up_url: str


class _RedisLogHandler(logging.Handler):
    """Keeps the times of the runtime's Redis outage WARNING and its resynchronised INFO."""

    def __init__(self, process: int, clock: Any) -> None:
        super().__init__(logging.INFO)
        self.process, self.clock = process, clock
        self.records: list[RedisLog] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "Redis" not in text:
            return
        kind = "down" if record.levelno >= logging.WARNING else "up"
        self.records.append(RedisLog(self.process, kind, self.clock()))


def _worker(spec: WorkerSpec, conn: Any) -> None:
    """One process of the fleet (spawned): import, report ready, wait for go, send, report."""
    try:
        _work(spec, conn)
    except BaseException as exc:  # reported to the parent, which fails the run with it
        import traceback

        conn.send(("error", "".join(traceback.format_exception(exc))))
    finally:
        conn.close()


def _clients(scenario: Scenario, url: str) -> tuple[list[Any], Any]:
    """Sync SDK clients aimed at ``url``, one per provider, and the one the traffic goes through
    (the first model's provider). Built here, not with ``chaos.checks``: the workers stay free of
    scipy, whose import would double their start-up."""
    import openai

    clients: list[Any] = []
    for provider in sorted(scenario.provider_set()):
        if provider == "azure":
            clients.append(
                openai.AzureOpenAI(api_key="chaos", api_version="2024-10-21", azure_endpoint=url)
            )
        else:
            clients.append(openai.OpenAI(api_key="chaos", base_url=url + "/v1"))
    first = scenario.first_key() or scenario.order[0]
    client = next(
        (c for c in clients if ("Azure" in type(c).__name__) == first.startswith("azure/")),
        clients[0],
    )
    return clients, client


def _warm_up(scenario: Scenario, url: str) -> None:
    """One call through a patched client on the warm-up server (healthy, in-process state): the
    SDK's and the runtime's lazy imports and first-use costs are paid before the run's clock."""
    import notdiamond

    from .drivers import send_sync

    clients, client = _clients(scenario, url)
    endings: list[Any] = []
    with notdiamond.init(clients, **scenario.init_kwargs()):
        send_sync(
            client.chat.completions.create,
            -1,
            scenario.traffic.model,
            False,
            endings,
            time.monotonic,
        )
    for c in clients:
        c.close()


def _work(spec: WorkerSpec, conn: Any) -> None:
    import notdiamond

    from .drivers import send_sync

    stack = contextlib.ExitStack()
    if spec.patch:
        from .fleet_mutants import PATCHES

        stack.enter_context(PATCHES[spec.patch]())
    _warm_up(spec.scenario, spec.warm_up_url)
    conn.send(("ready", spec.index))
    message = conn.recv()
    if message[0] != "prepare":
        return
    url = str(message[1])
    origin = [time.monotonic()]  # the run's origin, set by "go"

    def clock() -> float:
        return time.monotonic() - origin[0]

    scenario, fleet = spec.scenario, spec.scenario.fleet
    assert fleet is not None
    trace = Trace()
    logger = logging.getLogger("notdiamond")
    handler = _RedisLogHandler(spec.index, clock)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the per-call fallback warnings stay out of the run's stderr
    state = None
    if spec.redis_url is not None:
        state = notdiamond.RedisState(
            spec.redis_url,
            prefix=spec.prefix,
            sync_interval=fleet.sync_interval,
            timeout=fleet.timeout,
            probe_lease=fleet.probe_lease,
        )
    clients, client = _clients(scenario, url)
    interval = scenario.traffic.interval
    offset = spec.index / fleet.processes
    with (
        stack,
        notdiamond.init(
            clients,
            **scenario.init_kwargs(),
            seed=spec.seed + spec.index,
            clock=clock,
            sleep=time.sleep,
            observer=trace.observer,
            state=state,
        ),
    ):
        # everything is built (a shared state has made its first sync): the run may begin
        if state is not None:
            state.sync(timeout=5.0)
        conn.send(("prepared", spec.index))
        message = conn.recv()
        if message[0] != "go":
            return
        origin[0] = float(message[1])
        handler.records.clear()
        trace.transitions.clear()
        create = client.chat.completions.create
        for i in range(spec.n):
            wait = LEAD + (i + offset) * interval - clock()
            if wait > 0:
                time.sleep(wait)
            request = spec.index * spec.n + i
            current_request.set(request)
            send_sync(create, request, scenario.traffic.model, False, trace.endings, clock)
        end = clock()
        # diagnostics for the report: how many syncs this process's RedisState ended, and
        # whether its worker thread was still alive at the end of the traffic
        health = (
            (int(state._syncs), bool(state._thread and state._thread.is_alive()))
            if state is not None
            else (0, False)
        )
        if state is not None:
            state.close()
    for c in clients:
        c.close()
    transitions = [
        FleetTransition(spec.index, t.key, t.before, t.after, t.at, t.reason, t.until)
        for t in trace.transitions
    ]
    conn.send(
        (
            "done",
            spec.index,
            trace.attempts,
            trace.endings,
            transitions,
            handler.records,
            end,
            health,
        )
    )


@contextlib.contextmanager
def _one_fleet_at_a_time() -> Iterator[None]:
    """Fleet runs are real time: two at once on a small machine starve each other's processes
    (a stalled process misses its sync intervals). A file lock in the temporary directory makes
    the fleet runs of one machine take turns (jobs of other modes still run beside them)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    import tempfile
    from pathlib import Path

    path = Path(tempfile.gettempdir()) / "notdiamond-chaos-fleet.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _may_have_children() -> Iterator[None]:
    """A pool worker (daemonic) may not start processes; the fleet joins every worker it starts
    before it returns, so a daemonic parent is safe here: lift the flag for the block."""
    process = multiprocessing.current_process()
    daemonic = bool(process.daemon)
    if daemonic:
        process.daemon = False
    try:
        yield
    finally:
        if daemonic:
            process.daemon = True


def run_fleet(
    scenario: Scenario,
    n: int,
    seed: int,
    *,
    shared: bool = True,
    patch: str | None = None,
) -> tuple[FleetTrace, float]:
    """Run ``scenario`` (``mode="fleet"``) with ``n`` requests in all, ``n // processes`` per
    process (at least one); see the module doc.

    ``shared``: every process on one ``RedisState`` (else per-process state, no Redis).
    ``patch``: a :data:`chaos.fleet_mutants.PATCHES` name applied inside every worker.
    """
    from .redis_server import RedisServer

    fleet = scenario.fleet
    if fleet is None:
        raise ValueError(f"{scenario.name}: a fleet run needs the scenario's 'fleet' field.")
    n = max(1, n // fleet.processes)
    trace = FleetTrace()
    info = FleetInfo(fleet.processes, n, shared, fleet.sync_interval, fleet.timeout)
    trace.fleet = info
    prefix = f"chaos{seed}:"
    duration = LEAD + (n + 1) * scenario.traffic.interval
    with contextlib.ExitStack() as stack:
        stack.enter_context(_one_fleet_at_a_time())
        redis = stack.enter_context(RedisServer()) if shared else None
        healthy = {k: ProviderFaults.parse(k, {}) for k in scenario.order}
        warm = stack.enter_context(
            LoopbackServer(healthy, seed, time_scale=1.0, max_seconds=START_TIMEOUT + 60)
        )
        ctx = multiprocessing.get_context("spawn")
        started = time.monotonic()
        workers, conns = [], []
        stack.enter_context(_may_have_children())
        for index in range(fleet.processes):
            parent_end, child_end = ctx.Pipe()
            spec = WorkerSpec(
                index, scenario, n, seed, redis.url if redis else None, prefix, patch, warm.url
            )
            proc = ctx.Process(target=_worker, args=(spec, child_end), name=f"chaos-fleet-{index}")
            proc.start()
            child_end.close()
            workers.append(proc)
            conns.append(parent_end)
        stack.callback(_reap, workers)
        for conn in conns:
            _expect(conn, "ready", START_TIMEOUT)
        info.startup_s = time.monotonic() - started
        server = _FleetServer(
            scenario.providers,
            seed,
            trace,
            time_scale=1.0,
            timeouts=scenario.timeouts,
            max_requests=100 * n * fleet.processes,
            max_seconds=duration + 180.0,
        )
        stack.enter_context(server)
        for conn in conns:
            conn.send(("prepare", server.url))
        for conn in conns:
            _expect(conn, "prepared", START_TIMEOUT)
        origin = server.start_clock()
        heartbeat = _Heartbeat(origin)
        heartbeat.start()
        stack.callback(heartbeat.stop.set)
        faults = None
        if redis is not None and fleet.redis_down is not None:
            faults = _RedisFaults(redis, origin, fleet.redis_down)
            faults.start()
        for conn in conns:
            conn.send(("go", origin))
        ends = []
        for conn in conns:
            _, index, attempts, endings, transitions, logs, end, health = _expect(
                conn, "done", duration + 120.0
            )
            info.syncs.append(health)
            trace.attempts.extend(attempts)
            trace.endings.extend(endings)
            info.transitions.extend(transitions)
            info.logs.extend(logs)
            ends.append(end)
        if faults is not None:
            faults.join(duration + 30.0)
            info.redis_down = faults.happened
        if redis is not None:
            info.redis_ttls = _ttls(redis.url, prefix)
        info.end = max(ends, default=0.0)
        info.stalls = list(heartbeat.stalls)
        virtual = server.now()
    trace.issued = n * fleet.processes
    trace.max_in_flight = fleet.processes
    return trace, virtual


def _expect(conn: Any, kind: str, timeout: float) -> Any:
    if not conn.poll(timeout):
        raise RuntimeError(f"a fleet worker sent no {kind!r} within {timeout:.0f} s")
    message = conn.recv()
    if message[0] == "error":
        raise RuntimeError(f"a fleet worker failed:\n{message[1]}")
    if message[0] != kind:
        raise RuntimeError(f"a fleet worker sent {message[0]!r}, expected {kind!r}")
    return message


def _reap(workers: list[Any]) -> None:
    for proc in workers:
        proc.join(10.0)
        if proc.is_alive():
            proc.kill()
            proc.join()


class _FleetServer(LoopbackServer):
    """The loopback server on the run's time axis: its clock (the outage windows, its records)
    starts at :meth:`start_clock`, once every worker has built its clients and state."""

    offset = 0.0

    def now(self) -> float:
        return super().now() - self.offset

    def start_clock(self) -> float:
        """Start the run's clock now; returns its origin on ``time.monotonic()``."""
        origin = time.monotonic()
        self.offset = 0.0
        self.offset = super().now() - (time.monotonic() - origin)
        return origin


class _Heartbeat(threading.Thread):
    """Wakes every 10 ms and records each wake-up more than 20 ms late: the machine's stalls,
    which the timing checks add to their tolerance (a stalled machine delays every process)."""

    def __init__(self, origin: float) -> None:
        super().__init__(name="chaos-heartbeat", daemon=True)
        self.origin = origin
        self.stalls: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            before = time.monotonic()
            self.stop.wait(0.01)
            late = time.monotonic() - before - 0.01
            if late > 0.02:
                self.stalls.append((before - self.origin, late))


class _RedisFaults(threading.Thread):
    """Kills the server at ``kill`` seconds of the run and starts it again at ``start``."""

    def __init__(self, redis: Any, origin: float, window: tuple[float, float]) -> None:
        super().__init__(name="chaos-redis-faults", daemon=True)
        self.redis, self.origin, self.window = redis, origin, window
        self.happened: tuple[float, float] | None = None

    def run(self) -> None:
        kill, start = self.window
        time.sleep(max(0.0, self.origin + kill - time.monotonic()))
        # the times just before each action: no process can see it earlier
        killed = time.monotonic() - self.origin
        self.redis.kill()
        time.sleep(max(0.0, self.origin + start - time.monotonic()))
        started = time.monotonic() - self.origin
        self.redis.start()
        self.happened = (killed, started)


def _ttls(url: str, prefix: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5.0)
    try:
        return {key.decode(): int(client.pttl(key)) for key in client.scan_iter(match=prefix + "*")}
    finally:
        client.close()


def fleet_driver(
    scenario: Scenario, n: int, seed: int, *, extra: Mapping[str, Any], progress: Any
) -> tuple[Trace, float]:
    """The ``fleet`` mode's driver (``chaos.drivers.DRIVERS``): a shared-state run; a mutant's
    patch (``extra[FLEET_PATCH]``) is applied inside every worker."""
    unknown = set(extra) - {FLEET_PATCH}
    if unknown:
        raise ValueError(f"fleet runs take no extra init options, got {sorted(unknown)}")
    patch = extra.get(FLEET_PATCH)
    return run_fleet(scenario, n, seed, shared=True, patch=patch)


__all__ = [
    "FLEET_PATCH",
    "FleetInfo",
    "FleetTrace",
    "FleetTransition",
    "RedisLog",
    "fleet_driver",
    "run_fleet",
]
