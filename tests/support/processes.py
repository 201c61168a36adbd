"""Real worker processes for the tests: started by pid, stopped by pid, waited for with bounds."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
#: Every worker a test started and has not stopped; conftest stops them at the end of the run.
LIVE: set[WorkerProcess] = set()


def wait_until(
    condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


class WorkerProcess:
    """`python -m app.worker ...` as a subprocess, with the settings' environment."""

    def __init__(
        self,
        settings: Settings,
        *args: str,
        env: dict[str, str] | None = None,
        name: str | None = None,
        cwd: Path | None = None,
    ):
        self.name = name or f"test-{uuid.uuid4().hex[:8]}"
        self.args = [sys.executable, "-m", "app.worker", "--name", self.name, *args]
        self.env = {**os.environ, **settings.to_env(), **(env or {})}
        self.settings = settings
        self.cwd = cwd or ROOT
        self.process: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, wait_ready: bool = True) -> WorkerProcess:
        self.process = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        LIVE.add(self)
        if wait_ready:
            client = redis.Redis.from_url(self.settings.redis_url)
            try:
                wait_until(
                    lambda: self._ready(client) or self.process.poll() is not None,
                    timeout=20,
                    what=f"worker {self.name} to register",
                )
            except AssertionError:
                self.stop()
                raise
            finally:
                client.close()
            if self.process.poll() is not None and "--burst" not in self.args:
                raise AssertionError(
                    f"worker exited at start ({self.process.returncode}):\n{self.communicate()}"
                )
        return self

    def _ready(self, client: redis.Redis) -> bool:
        if "--processes" in self.args:
            wanted = int(self.args[self.args.index("--processes") + 1])
            states = [client.hget(key, "state") for key in client.smembers("rq:workers")]
            return sum(state not in (None, b"starting") for state in states) >= wanted
        return client.hget(f"rq:worker:{self.name}", "state") not in (None, b"starting")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.output += self.process.communicate(timeout=timeout)[0] or ""
        return self.process.returncode

    def read_output(self) -> str:
        """What the worker printed so far (without waiting for more)."""
        assert self.process is not None and self.process.stdout is not None
        fd = self.process.stdout.fileno()
        os.set_blocking(fd, False)
        try:
            while chunk := os.read(fd, 1 << 16):
                self.output += chunk.decode(errors="replace")
        except BlockingIOError:
            pass
        finally:
            os.set_blocking(fd, True)
        return self.output

    def communicate(self) -> str:
        assert self.process is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.output += self.process.communicate(timeout=10)[0] or ""
        return self.output

    def stop(self) -> int | None:
        LIVE.discard(self)
        if self.process is None or self.process.poll() is not None:
            if self.process is not None:
                self.communicate()
            return self.process.returncode if self.process else None
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait(timeout=10)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
