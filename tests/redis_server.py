"""The tests' Redis server: :mod:`chaos.redis_server` (one home for the tests, the benchmarks and
the chaos suite), and a pytest fixture for a fresh server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos.redis_server import (
    ENV_BINARY,
    MISSING,
    RedisServer,
    RedisServerMissing,
    find_server_binary,
    free_port,
)

__all__ = [
    "ENV_BINARY",
    "MISSING",
    "RedisServer",
    "RedisServerMissing",
    "find_server_binary",
    "free_port",
    "redis_server",
]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh server per test; a missing binary fails the test with the fixes named."""
    try:
        server = RedisServer()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server
