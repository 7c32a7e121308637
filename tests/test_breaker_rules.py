"""One state machine for both breakers: ``Circuit`` (in-process) and ``RedisCircuit`` share
``BreakerRules``. With Redis unreachable a RedisCircuit decides alone, so on the same seeded
sequence of events the two must give the same answers, transitions and health at every step."""

from __future__ import annotations

import random
from typing import Any

import pytest

from notdiamond._health.circuit import BreakerRules, Circuit, Transition
from notdiamond._health.redis_state import RedisCircuit, RedisState

KEY = "openai/gpt-4o"
SETTINGS: dict[str, Any] = {
    "consecutive_failures": 3,
    "failure_ratio": 0.5,
    "minimum_calls": 6,
    "window": 5.0,
    "break_duration": 2.0,
    "max_break_duration": 8.0,
}


class _Options:
    def __init__(self) -> None:
        for name, value in SETTINGS.items():
            setattr(self, name, value)


def _replay(circuit: BreakerRules, seed: int) -> list[Any]:
    rng = random.Random(seed)
    now = 0.0
    tokens: list[int] = []
    seen: list[Any] = []
    for _ in range(600):
        now += rng.choice((0.0, 0.05, 0.3, 1.0))
        pick = rng.random()
        if pick < 0.3:
            decision, token = circuit.admit(now)
            if token:
                tokens.append(token)
            seen.append(("admit", decision, bool(token)))
        elif pick < 0.55:
            circuit.success(now, tokens.pop() if tokens and rng.random() < 0.5 else 0)  # type: ignore[attr-defined]
        elif pick < 0.85:
            retry_after = rng.choice((None, None, None, 1.0, 20.0))
            token = tokens.pop() if tokens and rng.random() < 0.5 else 0
            circuit.failure(now, retry_after, token)
        elif pick < 0.93:
            circuit.release(tokens.pop() if tokens else 0)
        else:
            token = circuit.force_probe(now)
            if token:
                tokens.append(token)
            seen.append(("force_probe", bool(token)))
        seen.append((circuit.state, circuit.is_closed(), circuit.health(now)))
        seen.append(sorted(circuit.not_closed))
    return seen


@pytest.mark.parametrize("seed", range(4))
def test_in_process_and_redis_breakers_decide_alike_when_redis_is_unreachable(seed: int) -> None:
    clock = [0.0]
    changes: dict[str, list[Transition]] = {"local": [], "redis": []}
    local = Circuit(KEY, retry_after_cap=3.0, on_transition=changes["local"].append, **SETTINGS)
    state = RedisState(
        "redis://127.0.0.1:9/0",
        sync_interval=60.0,
        timeout=0.05,
        probe_lease=8.0,
        clock=lambda: clock[0],
    )
    try:
        shared = state.circuit(
            KEY, _Options(), retry_after_cap=3.0, on_transition=changes["redis"].append
        )
        assert isinstance(shared, RedisCircuit)
        assert not state.connected
        assert _replay(local, seed) == _replay(shared, seed)
    finally:
        state.close()
    assert changes["local"] == changes["redis"]
    assert {c.after for c in changes["local"]} == {"open", "half_open", "closed"}
