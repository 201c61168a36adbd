"""The worker loop: claim a job atomically, run it (forked or inline), record how it went.

It speaks to ports only: a `JobStore` (claim, finish, fail, heartbeat), a `WorkerPresence`
(registered the way rq registers workers, so `rq info` and rq-dashboard list it, and rq's
stop-job command reaches it) and a `Reaper`; when Redis fails it sees our errors, never
redis-py's. Stopping is `shutdown.py`, riding out outages `outage.py`, running a job `modes.py`.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence

from app.config import Settings
from app.infrastructure.queue.errors import QueueError, QueueUnavailableError
from app.infrastructure.queue.presence import WorkerPresence
from app.infrastructure.queue.reaper import Reaper
from app.infrastructure.queue.schema import Ending
from app.infrastructure.queue.store import Claim, ClaimReply, JobStore, Recorded, new_execution_id
from app.worker.events import ENDINGS, LogEvents, WorkerEvents
from app.worker.execution import JobRunner, Outcome, settle
from app.worker.modes import make_mode
from app.worker.outage import BURST_PATIENCE, RECORD_PATIENCE, Outage
from app.worker.scheduler import Scheduler
from app.worker.shutdown import Shutdown
from app.worker.upkeep import Upkeep

log = logging.getLogger("taskq.worker")

#: Seconds a worker's hash outlives its last heartbeat (rq's worker TTL).
WORKER_TTL = 20


class Worker:
    """Runs registered jobs from `queues` (in priority order) until stopped."""

    def __init__(
        self,
        *,
        store: JobStore,
        presence: WorkerPresence,
        reaper: Reaper,
        runner: JobRunner,
        settings: Settings,
        queues: Sequence[str],
        mode: str,
        events: Sequence[WorkerEvents] = (),
        scheduler: Scheduler | None = None,
    ) -> None:
        self.store, self.presence, self.reaper = store, presence, reaper
        self.settings = settings
        self.name = presence.name
        self.queues = list(queues)
        self.shutdown = Shutdown()
        self.mode = make_mode(mode, runner, self.shutdown)
        self.outage = Outage()
        self.events: tuple[WorkerEvents, ...] = (LogEvents(), *events)
        self.scheduler = scheduler
        self.current: Claim | None = None  # the job running now (the heartbeat keeps it alive)
        self._next_reply: ClaimReply | None = None  # a claim made ahead: with an outcome, or while idle
        self._lost: list[str] = []  # execution ids of claims whose reply was lost
        self._idle = False
        self._warned: set[str] = set()  # queues already named as skipped

    def work(self, burst: bool = False, max_jobs: int | None = None) -> int:
        """Run jobs until SIGTERM/SIGINT (or, with `burst`, until the queues are empty); jobs run.

        Raises:
            QueueUnavailableError: with `burst`, Redis stayed unreachable for BURST_PATIENCE s.
            QueueError: Redis refused this worker (a wrong password, a missing ACL permission).
        """
        self.shutdown.install()
        if not self._register(burst):
            return 0
        self.mode.start()
        upkeep = Upkeep(self, self.settings.heartbeat_interval / 2)
        upkeep.start()
        if self.scheduler is not None:
            self.scheduler.start()
        done = 0
        try:
            while not self.shutdown.warm.is_set() and (max_jobs is None or done < max_jobs):
                claim = self._next(burst)
                if claim is None:
                    if burst and self._idle:
                        break
                    self._check_patience(burst)
                    continue
                done += 1
                more = not self.shutdown.warm.is_set() and (max_jobs is None or done < max_jobs)
                self._record(claim, self._execute(claim), claim_next=more)
        finally:
            if self.scheduler is not None:
                self.scheduler.stop()
            upkeep.stop()
            self._release_held_claim()
            self._teardown()
            self.mode.close()
        log.info("worker stopped name=%s jobs=%d", self.name, done)
        return done

    def _register(self, burst: bool) -> bool:
        """Register with Redis, riding out an outage until stopped; False if stopped first."""
        while not self.shutdown.warm.is_set():
            try:
                self.presence.register(self)
            except QueueError as exc:
                if not exc.retryable:
                    raise  # a wrong password does not heal by waiting: the caller says so and exits
                self.outage.wait(exc, self.shutdown.warm)
                self._check_patience(burst)
                continue
            self.outage.over()
            queues = ",".join(self.queues)
            log.info(
                "worker started name=%s pid=%d mode=%s queues=%s",
                self.name,
                os.getpid(),
                self.mode.name,
                queues,
            )
            return True
        return False

    def _check_patience(self, burst: bool) -> None:
        if burst and self.outage.seconds > BURST_PATIENCE:
            raise QueueUnavailableError(
                self.presence.where, f"unreachable for {self.outage.seconds:.0f} s; --burst gives up"
            )

    def _teardown(self) -> None:
        if self._next_reply is not None and self._next_reply.claim() is not None:
            # A job claimed along with the last outcome, never run: put it back now.
            self._lost.append(self._next_reply.execution_id)
        try:
            self._recover_lost()
            self.store.flush_counts()
            self.presence.deregister()
        except QueueError as exc:
            log.warning("worker could not record its exit: %s", exc)

    # -- claiming ---------------------------------------------------------------------------

    def _next(self, burst: bool) -> Claim | None:
        """The next claimed job, or None after waiting for one (not waiting with `burst`)."""
        self._idle = False
        reply, self._next_reply = self._next_reply, None
        if reply is None:
            execution_id = new_execution_id()
            try:
                reply = self._claim_once(execution_id)
            except QueueError as exc:
                self._claim_failed(exc, execution_id)
                return None
        claim = reply.claim()
        if claim is None:
            # A burst worker is done when nothing is left to run, but not while jobs wait on a
            # limit: their slot or rate window comes back, and they are still its work.
            self._idle = not reply.waiting
            if not burst or reply.waiting:
                self._wait_for_work(reply)
        return claim

    def _claim_once(self, execution_id: str) -> ClaimReply:
        """Put back what lost claims took, then claim under `execution_id` (raises `QueueError`)."""
        self._recover_lost()
        reply = self.store.claim(execution_id)
        self.outage.over()
        return reply

    def _wait_for_work(self, reply: ClaimReply) -> None:
        """Block until a producer pushes a wake-up token, a scheduled job is due, or `idle_poll` passes."""
        if reply.suspended:
            self.shutdown.warm.wait(1.0)
            return
        self._warn_skipped(reply.skipped)
        timeout = self.settings.idle_poll
        if reply.next_due_in is not None:  # counted by Redis's clock; ours only sleeps that long
            timeout = min(timeout, max(0.01, reply.next_due_in))
        execution_id = new_execution_id()
        try:
            self._next_reply = self.store.wait_and_claim(timeout, execution_id)
        except QueueError as exc:
            self._claim_failed(exc, execution_id)

    def _warn_skipped(self, queues: list[str]) -> None:
        for queue in set(queues) - self._warned:
            self._warned.add(queue)
            log.error(
                "queue %s skipped: one of its keys in Redis has the wrong type (written by hand?)", queue
            )

    def _claim_failed(self, exc: QueueError, execution_id: str) -> None:
        if exc.retryable:
            self._remember_lost(execution_id)
            self.outage.wait(exc, self.shutdown.warm)
        else:
            log.error("claim refused by Redis: %s", exc)
            self.shutdown.warm.wait(1.0)

    def _release_held_claim(self) -> None:
        """A job claimed for the next turn (while idle, or with the last outcome) goes back."""
        held, self._next_reply = self._next_reply, None
        claim = held.claim() if held is not None else None
        if claim is None:
            return
        try:
            self.store.fail(claim, Ending.REQUEUE, None, "Worker stopped before running this job; put back")
            log.info("job requeued id=%s reason=worker stopping", claim.job_id)
        except QueueError as exc:
            log.warning("job %s not put back (%s); the reaper takes it back", claim.job_id, exc)

    def _remember_lost(self, execution_id: str) -> None:
        # Most failed claims never reached Redis; keep the last few to check, the reaper has the rest.
        self._lost = [*self._lost[-99:], execution_id]

    def _recover_lost(self) -> None:
        """Put back what claims with lost replies may have taken (nothing, most of the time)."""
        while self._lost:
            for job_id in self.store.recover(self._lost[0]):
                log.warning("job requeued id=%s reason=claim reply lost", job_id)
            self._lost.pop(0)

    # -- running and recording ----------------------------------------------------------------

    def _execute(self, claim: Claim) -> Outcome:
        self.emit("job_started", claim)
        self.current = claim
        try:
            return self.mode.run(claim)
        finally:
            self.current = None
            self.shutdown.job_done()

    def _record(self, claim: Claim, outcome: Outcome, claim_next: bool) -> None:
        """Write the outcome (and, after a success, claim the next job in the same call).

        The scripts are idempotent per execution, so retrying through a Redis outage is safe.
        A combined call that fails is retried without its claim part, whose id is remembered so
        that whatever it may have claimed is put back. The write is fenced by the execution: if
        the reaper gave the job to another worker meanwhile, nothing is written.
        """
        settled = settle(claim.record, outcome)
        recorded: list[Recorded] = []
        if settled.ending is Ending.FINISHED:
            next_execution = new_execution_id() if claim_next else None
            try:
                done, self._next_reply = self.store.finish(claim, outcome.return_blob, next_execution)
                recorded.append(done)
            except QueueError as exc:
                if next_execution is not None:
                    self._remember_lost(next_execution)
                finish = self.store.finish
                self._patiently(lambda: recorded.append(finish(claim, outcome.return_blob, None)[0]), exc)
        else:
            fail = self.store.fail
            self._patiently(
                lambda: recorded.append(fail(claim, settled.ending, settled.retry_in, settled.error))
            )
        self._report(claim, outcome, settled.ending, recorded[0] if recorded else None)

    def _report(self, claim: Claim, outcome: Outcome, ending: Ending, recorded: Recorded | None) -> None:
        if recorded is Recorded.STALE:
            log.warning(
                "job outcome dropped id=%s ending=%s: the reaper gave the job to another worker while this "
                "one was away (frozen or cut off past its heartbeat deadline); the newer run's state stands",
                claim.job_id,
                ending.value,
            )
            self.emit("outcome_dropped", claim)
        elif recorded is None:
            log.error(
                "job outcome not recorded id=%s ending=%s; the reaper will retake it",
                claim.job_id,
                ending.value,
            )
        else:
            self.emit("job_ended", claim, ENDINGS[ending], outcome, time.time() - claim.started)

    def _patiently(self, call: Callable[[], object], failed: QueueError | None = None) -> bool:
        """Call until it succeeds, through an outage; give up after RECORD_PATIENCE or a cold stop."""
        while True:
            if failed is not None:
                if not failed.retryable:
                    log.error("Redis refused to record a job outcome: %s", failed)
                    return False
                self.outage.wait(failed, self.shutdown.cold)
                if self.shutdown.cold.is_set() or self.outage.seconds > RECORD_PATIENCE:
                    return False
            try:
                call()
            except QueueError as exc:
                failed = exc
                continue
            self.outage.over()
            return True

    # -- heartbeats, upkeep, observers, commands -------------------------------------------------

    def emit(self, hook: str, *args: object) -> None:
        for observer in self.events:
            try:
                getattr(observer, hook)(*args)
            except Exception:
                log.exception("worker event observer %r failed on %s", observer, hook)

    def stop_job(self, job_id: str) -> None:
        """rq's stop-job command: the job ends `stopped` (recorded even if it is not running yet)."""
        self.shutdown.stop_job(job_id)

    def request_shutdown(self) -> None:
        """rq's shutdown command: as a SIGINT (on the main thread, like rq does it)."""
        os.kill(os.getpid(), signal.SIGINT)

    def kill_horse(self) -> None:
        """rq's kill-horse command."""
        self.mode.kill()
