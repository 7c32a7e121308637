"""Broken shared state (issue 11 section 3): the fleet checks must catch each one.

A fleet's workers are spawned processes, so a patch applied in the job's process would not reach
them: each mutant names a patch in :data:`PATCHES` (passed to the workers as the ``init`` extra
``chaos.fleet.FLEET_PATCH``) that every worker applies before it imports its clients. Seams:
``notdiamond._health.redis_state.RedisCircuit.__init__`` (the Redis keys of a breaker),
``RedisState._down`` (what a failed round trip does) and the module's ``CIRCUIT_SCRIPT`` (the Lua script every sync runs). A fragment of the script that
is no longer there makes the patch raise, the run crash, and the suite fail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .monkeypatch import swapped


@contextlib.contextmanager
def _not_shared() -> Iterator[None]:
    """Each process keeps its breakers under its own keys: nothing is shared (per-process prefix)."""
    from notdiamond._health.redis_state import RedisCircuit

    original = RedisCircuit.__init__

    def alone(self: Any, store: Any, key: str, *args: Any, **kwargs: Any) -> None:
        original(self, store, key, *args, **kwargs)
        own = f"{store.prefix}{store.instance}:"
        self.redis_keys = tuple(k.replace(store.prefix, own, 1) for k in self.redis_keys)

    with swapped(RedisCircuit, "__init__", alone):
        yield


def _script_edited(replacements: list[tuple[str, str]]) -> contextlib.AbstractContextManager[Any]:
    from notdiamond._health import redis_state

    script = redis_state.CIRCUIT_SCRIPT
    for old, new in replacements:
        if old not in script:
            raise RuntimeError(f"fleet mutant: {old!r} is no longer in CIRCUIT_SCRIPT")
        script = script.replace(old, new)
    return swapped(redis_state, "CIRCUIT_SCRIPT", script)


@contextlib.contextmanager
def _lease_missing() -> Iterator[None]:
    """The probe lease is granted to every process that asks (``SET`` without ``NX``)."""
    lease = "redis.call('SET', KEYS[3], ARGV[15], 'NX', 'PX', tonumber(ARGV[16]))"
    with _script_edited([(lease, lease.replace("'NX', ", ""))]):
        yield


@contextlib.contextmanager
def _no_ttl() -> Iterator[None]:
    """The breaker's keys are written without TTLs: its state survives its window."""
    with _script_edited(
        [
            (
                "redis.call('SET', KEYS[6], epoch, 'PX', 86400000)",
                "redis.call('SET', KEYS[6], epoch)",
            ),
            ("redis.call('PEXPIRE', KEYS[6], 86400000)", ""),
            ("redis.call('SET', KEYS[2], '1', 'PX', dur)", "redis.call('SET', KEYS[2], '1')"),
            ("redis.call('PEXPIRE', KEYS[1], dur + tonumber(ARGV[13]))", ""),
            ("redis.call('PEXPIRE', KEYS[4], win + bms)", ""),
            (
                "redis.call('SET', KEYS[5], ARGV[4], 'PX', win)",
                "redis.call('SET', KEYS[5], ARGV[4])",
            ),
            ("redis.call('PEXPIRE', KEYS[5], win)", ""),
        ]
    ):
        yield


@contextlib.contextmanager
def _never_local() -> Iterator[None]:
    """Redis unreachable: the process stays on the shared state it last read (no local fallback,
    no WARNING): a half-open model waits for a lease that no one can grant."""
    from notdiamond._health.redis_state import RedisState

    def stay(self: Any, exc: BaseException) -> None:
        return None

    with swapped(RedisState, "_down", stay):
        yield


#: name -> the patch every worker of a fleet run applies.
PATCHES: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "fleet_state_not_shared": _not_shared,
    "fleet_lease_missing": _lease_missing,
    "fleet_no_ttl": _no_ttl,
    "fleet_never_local": _never_local,
}


def _marker(name: str) -> Callable[[], contextlib.AbstractContextManager[dict[str, Any]]]:
    """The job-side patch: nothing in this process; the workers get ``name`` through ``extra``."""
    from .fleet import FLEET_PATCH

    @contextlib.contextmanager
    def patch() -> Iterator[dict[str, Any]]:
        yield {FLEET_PATCH: name}

    return patch


def fleet_mutants() -> list[Any]:
    from .mutants import Mutant

    def quick_size(scenario: Any) -> int:
        # a fleet run is real time; its quick size already crosses a dozen breaks of the outage
        return int(scenario.traffic.quick_n)

    return [
        Mutant(
            "fleet_state_not_shared",
            "each process keeps its breaker under its own keys (per-process state)",
            "fleet-outage",
            "fleet_dead_primary",
            _marker("fleet_state_not_shared"),
            sizer=quick_size,
        ),
        Mutant(
            "fleet_lease_missing",
            "the half-open probe lease is granted to every process (every process probes)",
            "fleet-outage",
            "fleet_dead_primary",
            _marker("fleet_lease_missing"),
            sizer=quick_size,
        ),
        Mutant(
            "fleet_no_ttl",
            "the breaker's Redis keys are written without TTLs (state survives its window)",
            "fleet-outage",
            "redis_expiry",
            _marker("fleet_no_ttl"),
            sizer=quick_size,
        ),
        Mutant(
            "fleet_never_local",
            "with Redis unreachable a process keeps its last shared state (no local fallback)",
            "fleet-redis-restart",
            "redis_local_fallback",
            _marker("fleet_never_local"),
            sizer=quick_size,
        ),
    ]
