"""The test fixture's Redis server: real, on loopback, no persistence, restartable, never skipped."""

from __future__ import annotations

import pytest
import redis

from tests.redis_server import ENV_BINARY, RedisServer, find_server_binary, redis_server

__all__ = ["redis_server"]


def test_server_runs_without_persistence_and_restarts_empty(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}
    assert client.config_get("bind")["bind"].split() == ["127.0.0.1"]
    client.set("k", "v")
    port = redis_server.port
    redis_server.restart()
    assert redis_server.port == port
    assert client.get("k") is None  # nothing survived the restart


def test_frozen_server_times_out_and_thaws(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.2)
    assert client.ping()
    redis_server.freeze()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    redis_server.thaw()
    assert client.ping()


def test_stopped_server_refuses_connections(redis_server: RedisServer) -> None:
    redis_server.stop()
    assert not redis_server.running
    assert not redis_server.ping()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.2)
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_missing_binary_is_an_error_naming_the_fixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_BINARY, "/nonexistent/redis-server")
    with pytest.raises(RuntimeError, match=r"apt-get install redis-server") as info:
        find_server_binary()
    assert "pip install -e '.[test]'" in str(info.value)
