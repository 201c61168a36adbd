"""When a worker stops: the flags that signals and rq's commands set, and nothing else.

A signal handler only sets a flag (and, for a cold stop, asks the running mode to cut the job
short), so a SIGTERM can never land between two halves of a state change (rq#2236).

- First SIGTERM/SIGINT (or rq's `shutdown` command): `warm`: finish the current job, then exit.
- Another one, a second or more later: `cold`: the job is cut short and put back.
- rq's `stop-job` command: the job of that id is stopped (ends `stopped`, no retry).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("taskq.worker")

#: A second stop signal counts as "stop now" only this long after the first (a double Ctrl-C
#: from one keypress must not lose the job).
COLD_AFTER = 1.0


class Shutdown:
    """The worker's stop flags. `warm` and `cold` are events: waits can be cut short by them."""

    def __init__(self) -> None:
        self.warm = threading.Event()
        self.cold = threading.Event()
        self.stop_job_id: str | None = None  # the job rq's stop-job command asked to stop
        self.on_cold: Callable[[], None] = lambda: None  # the mode cuts its running job short
        self.on_stop_job: Callable[[str], None] = lambda job_id: None
        self._first_at = 0.0

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def request(self, reason: str) -> None:
        """A stop request (signal or command): warm the first time, cold on a later one."""
        now = time.monotonic()
        if not self.warm.is_set():
            self._first_at = now
            self.warm.set()
            log.info("worker stopping after the current job (%s); send it again to stop now", reason)
        elif now - self._first_at >= COLD_AFTER and not self.cold.is_set():
            self.cold.set()
            log.warning("worker cold shutdown: the current job is put back")
            self.on_cold()

    def stop_job(self, job_id: str) -> None:
        """rq's stop-job command (from its pubsub thread): remember it, and stop the job if it runs."""
        self.stop_job_id = job_id
        self.on_stop_job(job_id)

    def stopping(self, job_id: str) -> bool:
        """Whether a stop was asked for this job (it may have come before the job was running)."""
        return self.stop_job_id == job_id

    def job_done(self) -> None:
        """A stop request is for one run only: the next job is not stopped by it."""
        self.stop_job_id = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.request(f"signal {signum}")
