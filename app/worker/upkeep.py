"""What a worker does beside its jobs, on a thread of its own: heartbeats and the reaper.

The heartbeat keeps the running job's deadline ahead (only while the job is still this
execution's), the worker's hash alive and its counters written; it registers the worker again
if Redis forgot it (a restart without persistence), and cuts short a job the reaper gave to
another worker while this one was away. It goes on until the loop has ended, so a job finishing
after a SIGTERM keeps its heartbeat.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.store import Claim

if TYPE_CHECKING:
    from app.worker.worker import Worker

log = logging.getLogger("taskq.worker")


class Upkeep:
    """The heartbeat thread of one worker."""

    def __init__(self, worker: Worker, every: float, name: str = "taskq-heartbeat") -> None:
        self.worker = worker
        self.every = every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._lost: Claim | None = None  # the job the heartbeat found taken back

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            self.beat()
            if self.worker.reaper.due():
                self.reap()

    def beat(self) -> None:
        worker = self.worker
        claim = worker.current
        try:
            beat = worker.store.heartbeat(claim)
            if not beat.registered:
                log.warning("worker registered again name=%s: Redis had forgotten it", worker.name)
                worker.presence.restore()
        except QueueError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        # Not ours any more, and still running here: a job that ended (and was recorded) while the
        # heartbeat was in flight is not ours either, and the next job must not be cut short for it.
        if (
            claim is not None
            and beat.job_ours is False
            and claim is not self._lost
            and worker.current is claim
        ):
            self._lost = claim
            log.warning(
                "job taken back by the reaper id=%s: this worker missed its heartbeat deadline; "
                "the job is cut short here and its outcome will be dropped",
                claim.job_id,
            )
            worker.mode.kill()

    def reap(self) -> None:
        try:
            for done in self.worker.reaper.run():  # observers are told every pass, empty lists too
                self.worker.emit("jobs_reaped", done.queue, done.requeued, done.failed)
                self.worker.emit("jobs_settled", done.queue, done.canceled, done.released)
        except QueueError as exc:
            log.warning("maintenance skipped: %s", exc)
