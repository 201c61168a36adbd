"""Pool mode: long-lived work horses, forked ahead by the forker, each running many jobs (as
Celery's prefork pool does), so a job costs a pipe hand-off instead of a fork.

What it keeps of fork mode: each job runs in a work horse, not in the worker, so a crash, a
segfault or the OOM killer takes the horse, never the worker (the job is retried or failed as in
fork mode, and the horse replaced); a job past its timeout is killed with its horse, which is
replaced; what a job leaves running is ended when it returns. What it gives up: the jobs one horse
runs share its memory, so state a job leaves behind (a module-level cache, a monkeypatch, a leak)
reaches the next jobs of that horse. That lasts until the horse is replaced: after
`WORKER_MAX_JOBS_PER_HORSE` jobs, or once its resident memory is above `WORKER_MAX_HORSE_RSS_MB`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass

from app.infrastructure.queue.store import Claim
from app.worker import horse
from app.worker.execution import JobRunner, Outcome
from app.worker.modes import KILL_GRACE, ForkMode
from app.worker.shutdown import Shutdown

log = logging.getLogger("taskq.worker")


@dataclass
class _PoolHorse:
    """A long-lived work horse, seen from the worker: its pid, its two pipe ends, its jobs so far."""

    pid: int
    job_fd: int
    outcome_fd: int
    jobs: int = 0

    @property
    def watched(self) -> horse.Horse:
        return horse.Horse(self.pid, self.outcome_fd)


class PoolMode(ForkMode):
    """Jobs run in a long-lived work horse, replaced after N jobs, above an RSS bound, or when it dies."""

    name = "pool"
    pooled = True

    def __init__(self, runner: JobRunner, shutdown: Shutdown) -> None:
        super().__init__(runner, shutdown)
        self.max_jobs = runner.settings.max_jobs_per_horse
        self.max_rss = runner.settings.max_horse_rss_mb * 1024 * 1024  # 0: no bound
        self._horse: _PoolHorse | None = None
        self.replaced = 0  # horses retired (jobs, memory, timeout) or lost (died, killed)

    def run(self, claim: Claim) -> Outcome:
        self._current = claim
        try:
            running = self._hand(claim)
            self._horse_pid = running.pid
            if self.shutdown.stopping(claim.job_id):  # asked after the claim, before the pid was known
                horse.kill_group(running.pid)
            if running.jobs >= self.max_jobs:
                self._ask_ahead()  # its successor forks while this, its last job, runs
            kill_after = self.runner.timeout(claim) + KILL_GRACE
            reply, ended = horse.watch_pooled(running.watched, claim, kill_after, self._working_forker())
        finally:
            self._horse_pid = 0
            self._current = None
        if reply is None:  # the horse is gone (its group killed): a new one takes the next job
            self._drop(running)
            return self._no_outcome(claim, ended)
        outcome, rss = reply
        self._after(running, claim, rss)
        return outcome  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._horse is not None:
            self._retire(self._horse, "worker stopping")
        super().close()

    def _hand(self, claim: Claim) -> _PoolHorse:
        """Give the job to the live horse, or to a new one if it is gone (before the job reached it)."""
        for _ in range(3):
            running = self._live_horse()
            if horse.hand_next(running.watched, running.job_fd, claim):
                running.jobs += 1
                return running
            self._drop(running, "its job pipe was closed")  # it died between our check and the job
        return running  # watch_pooled sees it gone, and the job ends as a terminated horse's

    def _live_horse(self) -> _PoolHorse:
        running = self._horse
        if running is not None and self._working_forker().exited(running.pid):
            self._drop(running, "it exited while idle")  # the OOM killer, say: no job was lost
            running = None
        if running is None:
            spare = self._spare()
            running = self._horse = _PoolHorse(spare.pid, spare.job_fd, spare.outcome_fd)
        return running

    def _after(self, running: _PoolHorse, claim: Claim, rss: int) -> None:
        """Retire the horse after its last job, above the memory bound, or when a job reached its timeout."""
        if time.time() - claim.started >= self.runner.timeout(claim):
            # SIGALRM cut the job short at an arbitrary point: nothing of this horse is trusted now.
            horse.kill_group(running.pid)
            self._retire(running, "a job reached its timeout")
        elif running.jobs >= self.max_jobs:
            self._retire(running, f"it ran {running.jobs} jobs (WORKER_MAX_JOBS_PER_HORSE)")
        elif self.max_rss and rss > self.max_rss:
            mib = rss / (1 << 20)
            self._retire(running, f"its peak RSS is {mib:.0f} MiB (above WORKER_MAX_HORSE_RSS_MB)")
            self._ask_ahead()

    def _retire(self, running: _PoolHorse, reason: str) -> None:
        """Close its pipes: it reads end-of-file and exits; the forker reaps it."""
        log.info("work horse replaced pid=%d jobs=%d reason=%s", running.pid, running.jobs, reason)
        self._drop(running)

    def _drop(self, running: _PoolHorse, lost: str = "") -> None:
        """Forget the horse, its pipes closed; if `lost` (it vanished while idle), kill what is left."""
        if lost:
            log.warning("work horse lost pid=%d jobs=%d: %s", running.pid, running.jobs, lost)
            horse.kill_group(running.pid)
        for fd in (running.job_fd, running.outcome_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._horse is running:
            self._horse = None
        self.replaced += 1
