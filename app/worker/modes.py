"""Where a claimed job runs: in a work horse per job (`ForkMode`, the default), in a long-lived work
horse (`PoolMode`, pool.py), or in the worker (`InlineMode`).

All run the same `JobRunner`; they differ in isolation and in how a running job is cut short:
fork and pool modes kill the horse's process group (timeout, stop, cold shutdown), inline mode raises
inside the job from a signal handler (SIGALRM for the timeout, SIGUSR1 for a stop).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import threading
from types import FrameType
from typing import Protocol

from app.infrastructure.queue.schema import Ending
from app.infrastructure.queue.store import Claim
from app.worker import horse
from app.worker.execution import ColdShutdown, JobRunner, JobStopped, Outcome
from app.worker.forker import Forker, ForkerGoneError, Spare
from app.worker.shutdown import Shutdown

log = logging.getLogger("taskq.worker")

#: Fork mode: after its own SIGALRM, a job's horse gets this long before it is SIGKILLed.
KILL_GRACE = 5.0
_STOPPED = "Job stopped by request"
_PUT_BACK = "Worker shut down cold; job put back"


class Mode(Protocol):
    """Runs one claimed job at a time and says how it ended."""

    name: str

    def start(self) -> None:
        """Get ready (before the worker starts any thread)."""

    def run(self, claim: Claim) -> Outcome:
        """Run the job to an outcome; it never raises for what the job does."""
        ...

    def kill(self) -> None:
        """Cut the running job short (rq's kill-horse command), if there is one."""

    def close(self) -> None:
        """Release what `start` made."""


class InlineMode:
    """The job runs in the worker process: fastest, no isolation (a crash takes the worker down)."""

    name = "inline"

    def __init__(self, runner: JobRunner, shutdown: Shutdown) -> None:
        self.runner, self.shutdown = runner, shutdown
        self._current: Claim | None = None
        shutdown.on_cold = self._cold
        shutdown.on_stop_job = self._interrupt

    def start(self) -> None:
        signal.signal(signal.SIGUSR1, self._on_interrupt)

    def run(self, claim: Claim) -> Outcome:
        self._current = claim
        try:
            if self.shutdown.stopping(claim.job_id):  # asked before it was running
                raise JobStopped
            return self.runner.run(claim)
        except ColdShutdown:
            return Outcome(Ending.REQUEUE, error=_PUT_BACK)
        except JobStopped:
            return Outcome(Ending.STOPPED, error=_STOPPED)
        finally:
            self._current = None

    def kill(self) -> None:
        self._interrupt(self._current.job_id if self._current else "")

    def close(self) -> None:
        pass

    def _cold(self) -> None:  # in the signal handler, on the main thread: raises into the job
        if self._current is not None:
            raise ColdShutdown

    def _interrupt(self, job_id: str) -> None:
        if self._current is not None and (main := threading.main_thread().ident) is not None:
            signal.pthread_kill(main, signal.SIGUSR1)

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        claim = self._current
        if claim is not None and self.shutdown.stopping(claim.job_id):
            raise JobStopped


class ForkMode:
    """Each job runs in a work horse of its own, forked ahead by the forker; killed at its timeout."""

    name = "fork"
    pooled = False  # pool mode's horses run many jobs each (pool.py)

    def __init__(self, runner: JobRunner, shutdown: Shutdown) -> None:
        self.runner, self.shutdown = runner, shutdown
        self._forker: Forker | None = None
        self._horse_pid = 0
        self._current: Claim | None = None
        shutdown.on_cold = self.kill
        shutdown.on_stop_job = self._stop_job

    def start(self) -> None:
        gc.freeze()  # what is loaded now is shared with every work horse, never collected by them
        self._forker = Forker(self.runner, self.pooled)  # before any thread starts: no lock is inherited
        self._forker.ask()

    def run(self, claim: Claim) -> Outcome:
        self._current = claim
        try:
            child = horse.hand(self._spare(), claim)
            self._horse_pid = child.pid
            if self.shutdown.stopping(claim.job_id):  # asked after the claim, before the pid was known
                horse.kill_group(child.pid)
            self._ask_ahead()
            kill_after = self.runner.timeout(claim) + KILL_GRACE
            outcome, ended = horse.watch(child, claim, kill_after, self._working_forker())
        finally:
            self._horse_pid = 0
            self._current = None
        return outcome if outcome is not None else self._no_outcome(claim, ended)

    def _no_outcome(self, claim: Claim, ended: str) -> Outcome:
        """What a job whose horse left no outcome ended as: stopped, put back, or terminated."""
        if self.shutdown.stopping(claim.job_id):
            return Outcome(Ending.STOPPED, error=f"{_STOPPED}; work horse killed")
        if self.shutdown.cold.is_set():
            return Outcome(Ending.REQUEUE, error=_PUT_BACK)
        return Outcome.failure(f"WorkHorseTerminated: {ended}", retryable=True)

    def kill(self) -> None:
        if self._horse_pid:
            horse.kill_group(self._horse_pid)

    def close(self) -> None:
        if self._forker is not None:
            self._forker.close()

    def _stop_job(self, job_id: str) -> None:
        if self._current is not None and self._current.job_id == job_id:
            self.kill()

    def _spare(self) -> Spare:
        try:
            return self._working_forker().spare()
        except ForkerGoneError:
            return self._working_forker(restart=True).spare()

    def _ask_ahead(self) -> None:
        if not self.shutdown.warm.is_set():
            with contextlib.suppress(ForkerGoneError):  # seen, and a new one started, next job
                self._working_forker().ask()  # the next horse forks while this job runs

    def _working_forker(self, restart: bool = False) -> Forker:
        """The forker; a new one if it is gone (killed, say, by the OOM killer)."""
        if self._forker is None or restart:
            if self._forker is not None:
                log.warning("the work-horse forker is gone; starting a new one")
                with contextlib.suppress(Exception):
                    self._forker.close(timeout=1.0)
            self._forker = Forker(self.runner, self.pooled)
        return self._forker


def make_mode(name: str, runner: JobRunner, shutdown: Shutdown) -> Mode:
    """The mode called `name` ('fork', 'pool' or 'inline')."""
    if name == "pool":
        from app.worker.pool import PoolMode  # it builds on ForkMode, above

        return PoolMode(runner, shutdown)
    return ForkMode(runner, shutdown) if name == "fork" else InlineMode(runner, shutdown)
