"""The bench's own redis-server on a free loopback port, so the shared server's data is never touched.

The chaos suite's private server (start on a free port, wait for PING, stop by pid), with no
persistence (`--appendonly no`), removed at the end (the caller's `try/finally`, plus `atexit` in
case that is skipped) and killed by the kernel if we die (PDEATHSIG). Every contender, rq, huey
and dramatiq included, points at this server only.
"""

from __future__ import annotations

import atexit
import shutil

import redis

from chaos.servers import PrivateRedis as ChaosRedis


class PrivateRedis(ChaosRedis):
    """One redis-server of our own: ours to empty between contenders, ours to stop."""

    def __init__(self) -> None:
        super().__init__("--appendonly", "no")

    def start(self) -> PrivateRedis:
        atexit.register(self.stop)
        try:
            super().start()
        except RuntimeError:
            self.stop()
            raise
        return self

    def version(self) -> str:
        return str(self.client().info("server")["redis_version"])

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=10)

    def wipe(self) -> None:
        """FLUSHDB on the PRIVATE server only (ours, started above): a clean slate per contender."""
        assert self.process is not None and self.process.poll() is None
        self.client().flushdb()

    def stop(self) -> None:
        """Stop it by pid and remove its folder (chaos keeps the folder for a restart; we do not)."""
        super().stop()
        shutil.rmtree(self.folder, ignore_errors=True)
