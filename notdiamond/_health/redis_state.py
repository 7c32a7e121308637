"""Breaker and retry-budget state shared through Redis: ``notdiamond.RedisState``.

Every process that uses the same Redis and ``prefix`` sees one breaker per model key and one retry
budget per model key. The store keeps the contract of :mod:`notdiamond._health.store`:

- **Decisions are local, I/O is not on any call's path.** Each process keeps a local copy of every
  breaker and budget and decides from it at once. A background worker (a thread for a ``redis.Redis``
  client or a URL, a task on the running event loop for a ``redis.asyncio.Redis`` client) talks to
  Redis: every ``sync_interval`` seconds it flushes the outcomes counted since the last flush and
  reads the shared state back, one pipelined round trip for all keys. A transition made here (open,
  close, a probe lease wanted or given back) wakes it at once, so it is published without waiting
  for the next interval.
- **Durations, not instants.** Redis holds the break as a key whose TTL is the time left; the window
  counts in buckets of Redis's own ``TIME``. Each process maps a remaining duration onto its own
  clock when it reads it (``until = clock() + remaining``), so processes need not share a clock.
- **One probe at a time.** After a break, a process that wants to probe asks for a lease (``SET NX``
  with a TTL of ``probe_lease`` seconds); the admission that asked skips the model, and the first
  admission after the lease is granted probes. A granted lease that no call took within two sync
  intervals is given back.
- **Everything expires.** The break key, the lease, the window buckets, the run of failures and the
  breaker's record all carry TTLs, so nothing grows and a crashed process leaves nothing stuck: an
  unprobed half-open record lapses ``max(max_break_duration, probe_lease)`` after its break ended.
- **Redis unreachable, slow or restarted.** Calls never wait on Redis. A round trip that fails or
  takes longer than ``timeout`` seconds marks an outage: one WARNING, the shared counts are dropped,
  and every process decides alone (a half-open model is probed locally). So a process is on local
  state at most ``sync_interval + timeout`` seconds after Redis stops answering. Each later interval
  tries again; when Redis answers, what was decided offline is published (opens made meanwhile), a
  restarted Redis (its data lost) gets every open breaker back, and an INFO says it is resynchronised.
- Keys hold the prefix and the model key only (``<prefix>cb:<model key>``, ...): never an API key or
  message content; the Redis URL (which may carry a password) is never logged or shown in ``repr``.

Limits: counts reach Redis up to ``sync_interval`` late and land in the bucket of the flush, so the
fleet may overshoot a shared retry budget by what its processes grant in one interval; the window is
resolved to a tenth of itself. A last-resort probe (every model open) takes no shared lease. One
Redis server (or a primary with replicas): a script touches several keys, which Redis Cluster would
refuse across slots. A ``redis.asyncio`` client serves one event loop (its connections belong to it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast, get_args

from .budget import BudgetHealth
from .circuit import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Admission,
    BreakerRules,
    Reason,
    Transition,
    TransitionListener,
)
from .store import BudgetOptions, CircuitOptions

logger = logging.getLogger("notdiamond")

#: Buckets per window for the shared window counts (the window is resolved to 1/BUCKETS of itself).
BUCKETS: Final = 10
#: Life of the epoch marker, refreshed by every sync; its loss tells that Redis lost its data.
EPOCH_TTL_MS: Final = 86_400_000
_REASONS: Final = frozenset(get_args(Reason))

# One round trip per sync: one script per breaker and per budget, pipelined. The scripts read time
# only from Redis (TIME), keep every key under a TTL, and return the shared state for this process
# to map onto its own clock.
CIRCUIT_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[6])
if not epoch then
  epoch = ARGV[19]
  redis.call('SET', KEYS[6], epoch, 'PX', 86400000)
else
  redis.call('PEXPIRE', KEYS[6], 86400000)
end
local intent = ARGV[5]
if intent == 'open' then
  local dur = tonumber(ARGV[6])
  if redis.call('PTTL', KEYS[2]) < dur then
    redis.call('SET', KEYS[2], '1', 'PX', dur)
    redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
    redis.call('HSET', KEYS[1], 'break', dur, 'next', ARGV[7], 'reason', ARGV[8],
      'failures', ARGV[9], 'calls', ARGV[10], 'consecutive', ARGV[11], 'retry_after', ARGV[12])
    redis.call('PEXPIRE', KEYS[1], dur + tonumber(ARGV[13]))
  end
elseif intent == 'close' then
  if redis.call('PTTL', KEYS[2]) <= 0 then
    redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
  end
end
local win = tonumber(ARGV[17])
local bms = tonumber(ARGV[18])
local cur = math.floor(now / bms)
local oldest = cur - math.ceil(win / bms)
local exists = redis.call('EXISTS', KEYS[1])
if exists == 0 then
  local ok = tonumber(ARGV[1])
  local bad = tonumber(ARGV[2])
  if ok > 0 then redis.call('HINCRBY', KEYS[4], cur .. ':o', ok) end
  if bad > 0 then redis.call('HINCRBY', KEYS[4], cur .. ':b', bad) end
  if ok + bad > 0 then redis.call('PEXPIRE', KEYS[4], win + bms) end
  if ARGV[3] == '1' then
    redis.call('SET', KEYS[5], ARGV[4], 'PX', win)
  elseif tonumber(ARGV[4]) > 0 then
    redis.call('INCRBY', KEYS[5], ARGV[4])
    redis.call('PEXPIRE', KEYS[5], win)
  end
end
local tok, tbad = 0, 0
local flat = redis.call('HGETALL', KEYS[4])
for i = 1, #flat, 2 do
  local field = flat[i]
  local sep = string.find(field, ':', 1, true)
  local bucket = tonumber(string.sub(field, 1, sep - 1))
  if bucket <= oldest then
    redis.call('HDEL', KEYS[4], field)
  elseif string.sub(field, sep + 1) == 'o' then
    tok = tok + tonumber(flat[i + 1])
  else
    tbad = tbad + tonumber(flat[i + 1])
  end
end
local run = tonumber(redis.call('GET', KEYS[5]) or '0')
local leased = 0
local op = ARGV[14]
if op == 'get' then
  if exists == 1 and redis.call('PTTL', KEYS[2]) <= 0 then
    if redis.call('SET', KEYS[3], ARGV[15], 'NX', 'PX', tonumber(ARGV[16])) then
      leased = 1
    elseif redis.call('GET', KEYS[3]) == ARGV[15] then
      leased = 1
    end
  end
elseif op == 'release' then
  if redis.call('GET', KEYS[3]) == ARGV[15] then redis.call('DEL', KEYS[3]) end
end
local st = redis.call('HMGET', KEYS[1], 'break', 'next', 'reason', 'failures', 'calls',
  'consecutive', 'retry_after')
return {epoch, redis.call('EXISTS', KEYS[1]), redis.call('PTTL', KEYS[2]),
  st[1] or '', st[2] or '', st[3] or '', st[4] or '', st[5] or '', st[6] or '', st[7] or '',
  tok, tbad, run, leased}
"""

BUDGET_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = tonumber(ARGV[3])
local bms = tonumber(ARGV[4])
local cur = math.floor(now / bms)
local oldest = cur - math.ceil(win / bms)
local firsts = tonumber(ARGV[1])
local retries = tonumber(ARGV[2])
if firsts > 0 then redis.call('HINCRBY', KEYS[1], cur .. ':f', firsts) end
if retries > 0 then redis.call('HINCRBY', KEYS[1], cur .. ':r', retries) end
if firsts + retries > 0 then redis.call('PEXPIRE', KEYS[1], win + bms) end
local tf, tr = 0, 0
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local field = flat[i]
  local sep = string.find(field, ':', 1, true)
  local bucket = tonumber(string.sub(field, 1, sep - 1))
  if bucket <= oldest then
    redis.call('HDEL', KEYS[1], field)
  elseif string.sub(field, sep + 1) == 'f' then
    tf = tf + tonumber(flat[i + 1])
  else
    tr = tr + tonumber(flat[i + 1])
  end
end
return {tf, tr}
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000.0))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float_or_none(value: object) -> float | None:
    text = _text(value)
    return float(text) if text else None


def _int_or_zero(value: object) -> int:
    text = _text(value)
    return int(text) if text else 0


# -- the breaker of one model key ----------------------------------------------------------------


@dataclass(slots=True)
class _CircuitSync:
    """What one sync sends for a breaker, and the generation it was taken at."""

    gen: int
    ok: int
    bad: int
    reset: bool
    run: int
    intent: str  # "", "open", "close"
    duration_ms: int
    next_ms: int
    opened: Transition | None
    lease_op: str  # "", "get", "release"
    lease_id: str


class RedisCircuit(BreakerRules):
    """The breaker of one model key: local decisions, state shared through the store's worker.

    The rules are :class:`notdiamond._health.circuit.BreakerRules` (the in-process ``Circuit``'s);
    this class adds where the counts come from (this process's outcomes plus the shared window as
    last read) and what a transition publishes. Thread-safe; the success path of a closed breaker
    takes no lock and does no I/O.
    """

    def __init__(
        self,
        store: RedisState,
        key: str,
        options: CircuitOptions,
        *,
        retry_after_cap: float,
        on_transition: TransitionListener | None,
    ) -> None:
        self._setup(
            key,
            consecutive_failures=options.consecutive_failures,
            failure_ratio=options.failure_ratio,
            minimum_calls=options.minimum_calls,
            window=options.window,
            break_duration=options.break_duration,
            max_break_duration=options.max_break_duration,
            retry_after_cap=retry_after_cap,
            probe_lease=store.probe_lease,
            on_transition=on_transition,
            not_closed=store.not_closed,
        )
        self.store = store
        base = f"{store.prefix}cb:{key}"
        #: state record, break (TTL = time left), probe lease, window buckets, run, epoch marker
        self.redis_keys = (
            base,
            f"{base}:break",
            f"{base}:probe",
            f"{base}:window",
            f"{base}:run",
            f"{store.prefix}epoch",
        )
        # Outcomes not yet flushed are the rules' ``_ok``/``_bad`` (end times); the run of
        # failures since the last flush, and whether a success reset the shared run meanwhile.
        self._run_pending = 0
        self._run_reset = False
        # The shared window as last read (it includes what this process flushed).
        self._shared_ok = 0
        self._shared_bad = 0
        self._shared_run = 0
        # The shared lease of the probe (the local token and its lease are the rules').
        self._lease_granted = False  # the shared lease is ours and no call took it yet
        self._granted_at = 0.0
        self._lease_held = False  # the shared lease is ours (granted or in use)
        self._lease_id = f"{store.instance}:{key}"
        self._want_lease = False
        self._refused_at = -math.inf  # when another process last held the lease we asked for
        self._release_lease = False
        self._intent = ""  # "open" / "close": to publish
        self._gen = 0

    # -- admission and outcomes (the rules, plus starting the worker) --------------------------

    def is_closed(self) -> bool:
        if self.store._worker_idle:
            self.store._start_worker()
        return self.state is CLOSED

    def admit(self, now: float) -> tuple[Admission, int]:
        if self.store._worker_idle:
            self.store._start_worker()
        return super().admit(now)

    def success(self, now: float, token: int = 0) -> None:
        if token and self._probe_succeeded(now, token) is not None:
            self._published()
            return
        if self.store._worker_idle:  # e.g. a redis.asyncio client: its first call in a loop
            self.store._start_worker()
        if self.state is CLOSED:
            self._run_pending = 0
            self._run_reset = True
            ok = self._ok
            ok.append(now)
            if len(ok) > self._prune_at:
                with self._lock:
                    self._prune(now)

    def failure(self, now: float, retry_after: float | None = None, token: int = 0) -> None:
        if self.store._worker_idle:
            self.store._start_worker()
        super().failure(now, retry_after, token)

    # -- the worker's side ---------------------------------------------------------------------

    def snapshot(self, now: float, republish: bool) -> _CircuitSync:
        """What to send now (nothing is cleared until the answer is applied)."""
        with self._lock:
            if republish and self.state is not CLOSED and not self._intent:
                self._intent = "open"
            if (
                self._lease_granted
                and time.monotonic() - self._granted_at > 2 * self.store.sync_interval
                and not self._lease_token
            ):
                self._lease_granted = False
                self._release_lease = True
            if self._want_lease and self.state is CLOSED:
                self._want_lease = False
            lease_op = "release" if self._release_lease else "get" if self._want_lease else ""
            opened = self._last_opened
            remaining = self.until - now
            return _CircuitSync(
                gen=self._gen,
                ok=len(self._ok),
                bad=len(self._bad),
                reset=self._run_reset,
                run=self._run_pending,
                intent=self._intent,
                duration_ms=_ms(remaining) if self._intent == "open" else 0,
                next_ms=_ms(self._break),
                opened=opened,
                lease_op=lease_op,
                lease_id=self._lease_id,
            )

    def script_args(self, sync: _CircuitSync, epoch: str) -> list[str | int]:
        opened = sync.opened
        lapse = max(self.max_break_duration, self.store.probe_lease)
        return [
            sync.ok,
            sync.bad,
            "1" if sync.reset else "0",
            sync.run,
            sync.intent,
            sync.duration_ms,
            sync.next_ms,
            opened.reason if opened else "",
            opened.failures if opened else 0,
            opened.calls if opened else 0,
            opened.consecutive if opened else 0,
            "" if opened is None or opened.retry_after is None else repr(opened.retry_after),
            _ms(lapse),
            sync.lease_op,
            sync.lease_id,
            _ms(self.store.probe_lease),
            _ms(self.window),
            _ms(self.window / BUCKETS),
            epoch,
        ]

    def apply(self, sync: _CircuitSync, answer: Sequence[Any], now: float, lost: bool) -> bool:
        """Take the shared state in. ``lost``: Redis lost its data (restart). True: sync again."""
        changed: Transition | None = None
        again = False
        with self._lock:
            for _ in range(min(sync.ok, len(self._ok))):
                self._ok.popleft()
            for _ in range(min(sync.bad, len(self._bad))):
                self._bad.popleft()
            if self._run_reset == sync.reset:
                self._run_reset = False
            self._run_pending = max(0, self._run_pending - sync.run)
            if sync.lease_op == "release":
                self._release_lease = False
                self._lease_held = False
            granted = int(answer[13]) == 1
            if sync.lease_op == "get":
                self._want_lease = False
                if granted and self.state is HALF_OPEN and not self._lease_token:
                    self._lease_granted = self._lease_held = True
                    self._granted_at = time.monotonic()  # real time, as the lease's TTL
                elif not granted:
                    self._refused_at = time.monotonic()
            if self._gen != sync.gen:
                return True  # a transition happened meanwhile: publish it first
            if sync.intent:
                self._intent = ""
            if lost and self.state is not CLOSED:
                self._intent = "open"
                return True
            exists = int(answer[1]) == 1
            remaining = int(answer[2])
            if exists:
                self._shared_ok = self._shared_bad = self._shared_run = 0
                self._break = float(_text(answer[4]) or 0) / 1000.0 or self._break
                until = now + max(remaining, 0) / 1000.0
                if self.state is CLOSED or (self.state is HALF_OPEN and remaining > 0):
                    changed = self._adopt_open(answer, now, until)
                elif self.state is OPEN:
                    self.until = until
            else:
                self._shared_ok = int(answer[10])
                self._shared_bad = int(answer[11])
                self._shared_run = int(answer[12])
                if self.state is not CLOSED:
                    changed = Transition(self.key, self.state, CLOSED, now, "probe_succeeded")
                    self._close()
        self._report(changed)
        return again

    def offline(self, now: float) -> None:
        """Redis is unreachable: forget the shared counts and lease; keep own outcomes in window."""
        with self._lock:
            self._shared_ok = self._shared_bad = self._shared_run = 0
            self._lease_granted = self._lease_held = False
            self._want_lease = self._release_lease = False
            self._prune(now)

    def _forked(self) -> None:
        self._lock = threading.Lock()
        self._lease_id = f"{self.store.instance}:{self.key}"
        self._lease_granted = self._lease_held = False
        self._want_lease = self._release_lease = False

    # -- what the rules ask of this store (lock held) -----------------------------------------

    def _count_failure(self, now: float) -> tuple[int, int, int]:
        self._run_pending += 1
        self._bad.append(now)
        self._prune(now)
        failures = self._shared_bad + len(self._bad)
        calls = failures + self._shared_ok + len(self._ok)
        return failures, calls, self._run_pending + (0 if self._run_reset else self._shared_run)

    def _counts(self) -> tuple[int, int, int]:
        failures = self._shared_bad + len(self._bad)
        run = self._run_pending + (0 if self._run_reset else self._shared_run)
        return run, failures, failures + self._shared_ok + len(self._ok)

    def _grant(self, now: float) -> tuple[tuple[Admission, int], bool]:
        if self._lease_granted or not self.store.connected:
            return ("probe", self._take_lease(now)), False
        wake = False
        if not self._want_lease:
            # Ask at once, but after a refusal only at the regular syncs: no round trip per
            # admission while another process holds the lease.
            self._want_lease = True
            wake = time.monotonic() - self._refused_at >= self.store.sync_interval
        return ("skip", 0), wake

    def _take_lease(self, now: float) -> int:
        self._lease_granted = False  # a granted shared lease is taken by this probe
        return super()._take_lease(now)

    def _opened(self) -> None:
        self._lease_granted = False
        self._lease_held = False  # the open script deletes the lease
        self._intent = "open"
        self._gen += 1

    def _closed(self) -> None:
        self._lease_granted = self._lease_held = False
        self._gen += 1

    def _closed_by_probe(self) -> None:
        self._intent = "close"

    def _lease_freed(self) -> bool:
        if self._lease_held:
            self._release_lease = True
        return self._lease_held

    def _published(self) -> None:  # no lock held
        self.store._wake()

    # -- internals (lock held) -----------------------------------------------------------------

    def _adopt_open(self, answer: Sequence[Any], now: float, until: float) -> Transition:
        """Another process opened it (read from Redis): open here too, with its figures."""
        reason_text = _text(answer[5])
        reason = cast(Reason, reason_text if reason_text in _REASONS else "consecutive_failures")
        before = self.state
        self.not_closed.add(self.key)  # before the state (see BreakerRules)
        self.state = OPEN
        self.until = until
        self._lease_token = 0
        self._lease_until = -math.inf
        self._lease_granted = False
        self._clear_counts()
        opened = Transition(
            self.key,
            before,
            OPEN,
            now,
            reason,
            until=until,
            break_duration=_int_or_zero(answer[3]) / 1000.0,
            failures=_int_or_zero(answer[6]),
            calls=_int_or_zero(answer[7]),
            consecutive=_int_or_zero(answer[8]),
            retry_after=_float_or_none(answer[9]),
        )
        self._last_opened = opened
        return opened

    def _clear_counts(self) -> None:
        self._ok.clear()
        self._bad.clear()
        self._run_pending = 0
        self._run_reset = False
        self._shared_ok = self._shared_bad = self._shared_run = 0
        self._prune_at = 256

    def _prune(self, now: float) -> None:
        if self.store.connected:
            self._prune_at = max(256, 2 * len(self._ok))
            return  # the worker drains them
        super()._prune(now)


# -- the retry budget of one model key -----------------------------------------------------------


class RedisBudget:
    """The retry budget of one model key, counted over the fleet (see :mod:`.budget`)."""

    def __init__(self, store: RedisState, key: str, options: BudgetOptions) -> None:
        self.store = store
        self.key = key
        self.ratio = options.ratio
        self.min_per_second = options.min_per_second
        self.window = options.window
        self.floor = options.min_per_second * options.window
        self.redis_key = f"{store.prefix}budget:{key}"
        self._lock = threading.Lock()
        self._firsts: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._shared_firsts = 0
        self._shared_retries = 0

    def first_attempt(self, now: float) -> None:
        if self.store._worker_idle:
            self.store._start_worker()
        self._firsts.append(now)

    def try_retry(self, now: float) -> bool:
        with self._lock:
            self._prune(now)
            firsts = self._shared_firsts + len(self._firsts)
            retries = self._shared_retries + len(self._retries)
            if retries + 1 <= self.ratio * firsts + self.floor:
                self._retries.append(now)
                return True
            return False

    def health(self, now: float) -> BudgetHealth:
        with self._lock:
            self._prune(now)
            firsts = self._shared_firsts + len(self._firsts)
            return BudgetHealth(
                self.key,
                firsts,
                self._shared_retries + len(self._retries),
                self.ratio * firsts + self.floor,
            )

    def snapshot(self) -> tuple[int, int]:
        return len(self._firsts), len(self._retries)

    def script_args(self, sync: tuple[int, int]) -> list[str | int]:
        return [sync[0], sync[1], _ms(self.window), _ms(self.window / BUCKETS)]

    def apply(self, sync: tuple[int, int], answer: Sequence[Any]) -> None:
        with self._lock:
            for _ in range(min(sync[0], len(self._firsts))):
                self._firsts.popleft()
            for _ in range(min(sync[1], len(self._retries))):
                self._retries.popleft()
            self._shared_firsts = int(answer[0])
            self._shared_retries = int(answer[1])

    def offline(self, now: float) -> None:
        with self._lock:
            self._shared_firsts = self._shared_retries = 0
            self._prune(now)

    def _prune(self, now: float) -> None:
        if self.store.connected:
            return
        cutoff = now - self.window
        for times in (self._firsts, self._retries):
            while times and times[0] <= cutoff:
                times.popleft()


# -- the store -----------------------------------------------------------------------------------


#: Every RedisState of this process, to restart its worker in a forked child (threads do not
#: survive a fork; e.g. a server that forks its workers after ``init``).
_STATES: weakref.WeakSet[RedisState] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for state in list(_STATES):
        state._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
        raise ImportError(
            'notdiamond.RedisState needs redis-py: pip install "notdiamond[redis]"'
        ) from exc
    return redis


class RedisState:
    """Health state (circuit breakers, retry budgets) shared by every process on one Redis.

    ``init(..., state=notdiamond.RedisState("redis://localhost:6379/0"))``. ``redis_client_or_url``:
    a ``redis.Redis`` or ``redis.asyncio.Redis`` client, or a URL (a sync client is made from it with
    ``timeout`` as its socket timeouts). Processes with the same Redis and ``prefix`` share state;
    ``sync_interval`` seconds bounds how late one process learns of another's counts and openings.
    ``timeout``: a round trip slower than this marks Redis unreachable (local state until it is
    back). ``probe_lease``: how long one process may hold a half-open model's probe. ``clock``: the
    clock on which the remaining durations read from Redis are mapped (the manager's, by default
    ``time.monotonic``).
    """

    def __init__(
        self,
        redis_client_or_url: Any,
        prefix: str = "notdiamond:",
        sync_interval: float = 1.0,
        *,
        timeout: float = 0.5,
        probe_lease: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        redis = _redis_module()
        from redis import asyncio as redis_asyncio

        if not isinstance(prefix, str):
            raise TypeError(
                f"RedisState(prefix=...) must be a string, got {type(prefix).__name__}. "
                "E.g. prefix='notdiamond:'."
            )
        if not prefix or any(c.isspace() for c in prefix):
            raise ValueError(
                f"RedisState(prefix=...) must be a non-empty string without spaces, got "
                f"{prefix!r}. E.g. prefix='notdiamond:'."
            )
        self.sync_interval = _positive("sync_interval", sync_interval, "sync_interval=1.0")
        self.timeout = _positive("timeout", timeout, "timeout=0.5")
        self.probe_lease = _positive("probe_lease", probe_lease, "probe_lease=30.0")
        self.prefix = prefix
        self.clock: Callable[[], float] = time.monotonic if clock is None else clock
        self._async = False
        if isinstance(redis_client_or_url, str):
            if not redis_client_or_url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(
                    "RedisState(redis_client_or_url=...) as a string must be a Redis URL "
                    "starting with redis://, rediss:// or unix://, e.g. 'redis://localhost:6379/0'."
                )
            self.client: Any = redis.Redis.from_url(
                redis_client_or_url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
            )
        elif isinstance(redis_client_or_url, redis_asyncio.Redis):
            self.client = redis_client_or_url
            self._async = True
        elif isinstance(redis_client_or_url, redis.Redis):
            self.client = redis_client_or_url
        else:
            raise TypeError(
                "RedisState(redis_client_or_url=...) must be a redis.Redis or redis.asyncio.Redis "
                f"client or a Redis URL, got {type(redis_client_or_url).__name__}."
            )
        #: This process's name in lease values: random, nothing about the host or the user.
        self.instance = uuid.uuid4().hex[:16]
        self.connected = False
        self._outage = False
        self._epoch: str | None = None
        self._lost = False
        self._circuits: dict[str, RedisCircuit] = {}
        self._budgets: dict[str, RedisBudget] = {}
        #: The keys whose breaker is not closed in this process (kept by the breakers).
        self.not_closed: set[str] = set()
        self._registry_lock = threading.Lock()
        self._worker_idle = True
        self._stopping = False
        self._wakeup = threading.Event()
        self._synced = threading.Condition()
        self._syncs = 0  # rounds ended
        self._started = 0  # rounds begun
        self._thread: threading.Thread | None = None
        self._io: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._async_wakeup: asyncio.Event | None = None
        _STATES.add(self)

    @property
    def needs_event_loop(self) -> bool:
        """True with a ``redis.asyncio`` client: its worker runs on the event loop of the calls."""
        return self._async

    def bind_clock(self, clock: Callable[[], float]) -> None:
        """Map remaining durations onto ``clock`` (``init`` passes the manager's clock)."""
        self.clock = clock

    def __repr__(self) -> str:  # never the URL: it may carry a password
        return f"RedisState(prefix={self.prefix!r}, sync_interval={self.sync_interval!r})"

    # -- the store interface -------------------------------------------------------------------

    def circuit(
        self,
        key: str,
        options: CircuitOptions,
        *,
        retry_after_cap: float = math.inf,
        on_transition: TransitionListener | None = None,
    ) -> RedisCircuit:
        with self._registry_lock:
            found = self._circuits.get(key)
            if found is None:
                found = self._circuits[key] = RedisCircuit(
                    self,
                    key,
                    options,
                    retry_after_cap=retry_after_cap,
                    on_transition=on_transition,
                )
        self._start_worker()
        return found

    def budget(self, key: str, options: BudgetOptions) -> RedisBudget:
        with self._registry_lock:
            found = self._budgets.get(key)
            if found is None:
                found = self._budgets[key] = RedisBudget(self, key, options)
        self._start_worker()
        return found

    # -- control -------------------------------------------------------------------------------

    def sync(self, timeout: float = 5.0) -> bool:
        """Wake the worker and wait (from a thread, not the event loop) until one more sync ended.

        For tests and for a clean shutdown; ``True`` if a sync ended within ``timeout`` seconds.
        """
        self._start_worker()
        with self._synced:
            target = self._started + 1  # a round that takes its snapshot after this call
        self._wake()
        with self._synced:
            return self._synced.wait_for(lambda: self._syncs >= target, timeout)

    def close(self) -> None:
        """Stop the worker (a last flush is attempted for a sync client)."""
        self._stopping = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.timeout + 1.0)
        if self._task is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._io is not None:
            self._io.shutdown(wait=False)

    # -- the worker ----------------------------------------------------------------------------

    def _forked(self) -> None:
        """In a forked child: a new identity, no worker yet (the next use starts one)."""
        self.instance = uuid.uuid4().hex[:16]
        self.connected = False
        self._outage = False
        self._registry_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._synced = threading.Condition()
        self._thread = self._io = None
        self._loop = self._async_wakeup = self._task = None
        self._worker_idle = True
        for circuit in self._circuits.values():
            circuit._forked()
        for budget in self._budgets.values():
            budget._lock = threading.Lock()

    def _start_worker(self) -> None:
        if not self._worker_idle or self._stopping:
            return
        if self._async:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # started by the first use inside the event loop
            with self._registry_lock:
                if not self._worker_idle:
                    return
                self._loop = loop
                self._async_wakeup = asyncio.Event()
                self._task = loop.create_task(self._run_async())
                self._worker_idle = False
            return
        with self._registry_lock:
            if not self._worker_idle:
                return
            self._io = concurrent.futures.ThreadPoolExecutor(1, "notdiamond-redis-io")
            self._thread = threading.Thread(
                target=self._run_thread, name="notdiamond-redis-sync", daemon=True
            )
            self._worker_idle = False
        self._thread.start()

    def _wake(self) -> None:
        self._wakeup.set()
        loop, event = self._loop, self._async_wakeup
        if loop is not None and event is not None and not loop.is_closed():
            try:
                if asyncio.get_running_loop() is loop:
                    event.set()
                    return
            except RuntimeError:
                pass
            loop.call_soon_threadsafe(event.set)

    def _run_thread(self) -> None:
        assert self._io is not None
        while True:
            self._wakeup.wait(self.sync_interval)
            self._wakeup.clear()
            stopping = self._stopping
            again = True
            while again:
                again = False
                plan = self._plan()
                future = self._io.submit(self._send_sync, plan[2])
                try:
                    answers = future.result(self.timeout)
                except Exception as exc:
                    self._down(exc)
                    # A hung round trip: wait it out before the next one (never on a call's path).
                    with contextlib.suppress(Exception):
                        future.result()
                else:
                    again = self._up(plan, answers)
            self._count_sync()
            if stopping:
                return

    async def _run_async(self) -> None:
        event = self._async_wakeup
        assert event is not None
        try:
            while not self._stopping:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), self.sync_interval)
                event.clear()
                again = True
                while again:
                    again = False
                    plan = self._plan()
                    try:
                        answers = await asyncio.wait_for(self._send_async(plan[2]), self.timeout)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        self._down(exc)
                    else:
                        again = self._up(plan, answers)
                self._count_sync()
        finally:
            # Cancelled with its event loop: the next use inside a running loop starts another.
            with self._registry_lock:
                self._loop = self._async_wakeup = self._task = None
                self._worker_idle = True

    def _count_sync(self) -> None:
        with self._synced:
            self._syncs = self._started
            self._synced.notify_all()

    def _plan(
        self,
    ) -> tuple[
        list[tuple[RedisCircuit, _CircuitSync]],
        list[tuple[RedisBudget, tuple[int, int]]],
        list[tuple[str, Sequence[str], Sequence[str | int]]],
    ]:
        with self._synced:
            self._started += 1
        now = self.clock()
        republish = self._lost
        self._lost = False
        with self._registry_lock:
            circuits = list(self._circuits.values())
            budgets = list(self._budgets.values())
        epoch = uuid.uuid4().hex[:16]  # taken only if Redis has none: then it lost its data
        circuit_plan = [(c, c.snapshot(now, republish)) for c in circuits]
        budget_plan = [(b, b.snapshot()) for b in budgets]
        commands: list[tuple[str, Sequence[str], Sequence[str | int]]] = [
            (CIRCUIT_SCRIPT, c.redis_keys, c.script_args(s, epoch)) for c, s in circuit_plan
        ]
        commands += [(BUDGET_SCRIPT, (b.redis_key,), b.script_args(s)) for b, s in budget_plan]
        if not commands:  # still probe Redis, to know whether it is there
            commands.append(("return 1", (), ()))
        return circuit_plan, budget_plan, commands

    def _send_sync(self, commands: list[tuple[str, Sequence[str], Sequence[str | int]]]) -> Any:
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args in commands:
            pipe.eval(script, len(keys), *keys, *args)
        return pipe.execute()

    async def _send_async(
        self, commands: list[tuple[str, Sequence[str], Sequence[str | int]]]
    ) -> Any:
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args in commands:
            pipe.eval(script, len(keys), *keys, *args)
        return await pipe.execute()

    def _up(
        self,
        plan: tuple[
            list[tuple[RedisCircuit, _CircuitSync]],
            list[tuple[RedisBudget, tuple[int, int]]],
            list[tuple[str, Sequence[str], Sequence[str | int]]],
        ],
        answers: Sequence[Any],
    ) -> bool:
        circuit_plan, budget_plan, _ = plan
        now = self.clock()
        lost = False
        if circuit_plan:
            epoch = _text(answers[0][0])
            lost = self._epoch is not None and epoch != self._epoch
            self._epoch = epoch
        self.connected = True
        if self._outage:
            self._outage = False
            logger.info(
                "notdiamond: shared health state in Redis (prefix %r) is reachable again; "
                "resynchronised",
                self.prefix,
            )
        again = lost
        for (circuit, sync), answer in zip(circuit_plan, answers, strict=False):
            again = circuit.apply(sync, answer, now, lost) or again
        for (budget, bsync), answer in zip(budget_plan, answers[len(circuit_plan) :], strict=False):
            budget.apply(bsync, answer)
        if lost:
            self._lost = True
        return again

    def _down(self, exc: BaseException) -> None:
        now = self.clock()
        self.connected = False
        if not self._outage:
            self._outage = True
            logger.warning(
                "notdiamond: shared health state in Redis (prefix %r) is unreachable (%s); each "
                "process decides on its own local state until it is back",
                self.prefix,
                type(exc).__name__,
            )
        with self._registry_lock:
            circuits = list(self._circuits.values())
            budgets = list(self._budgets.values())
        for circuit in circuits:
            circuit.offline(now)
        for budget in budgets:
            budget.offline(now)


def _positive(name: str, value: object, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"RedisState({name}=...) must be a number of seconds, got {value!r}.")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(
            f"RedisState({name}=...) must be a finite number of seconds > 0, got {value!r}. "
            f"E.g. {example}."
        )
    return number
