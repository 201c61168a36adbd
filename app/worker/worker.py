"""The worker loop: claim a job atomically, run it (forked or inline), record how it went.

It is an rq `BaseWorker` (so `rq info`, rq-dashboard and rq's stop/shutdown commands see and
steer it) whose hot path is our scripts (`store.py`) instead of rq's ~18 round trips per job.
Signals only set flags, so a SIGTERM can never land between two halves of a state change
(rq#2236).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import redis
from rq.worker import BaseWorker

from app.config import Settings
from app.infrastructure.queue import keys
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.serialization import make_serializer
from app.worker import horse
from app.worker.events import LogEvents, WorkerEvents
from app.worker.execution import Claim, ColdShutdown, JobRunner, JobStopped, Outcome, run_inline
from app.worker.maintenance import Maintenance
from app.worker.progress import ProgressWriter
from app.worker.store import ClaimReply, WorkerStore, new_execution_id

log = logging.getLogger("taskq.worker")

WORKER_TTL = 20
KILL_GRACE = 5.0
RECORD_PATIENCE = 120.0
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_ENDING = {
    "finished": "finished",
    "failed": "failed",
    "retry": "retried",
    "stopped": "stopped",
    "requeue": "requeued",
}


class Worker(BaseWorker):
    """Runs registered jobs from `queues` (in priority order) until stopped."""

    def __init__(
        self,
        connection: redis.Redis,
        settings: Settings,
        registry: JobRegistry,
        functions: Mapping[str, Callable[..., Any]],
        queues: Sequence[str],
        *,
        name: str | None = None,
        mode: str | None = None,
        events: Sequence[WorkerEvents] = (),
    ) -> None:
        names = [keys.check_queue_name(queue) for queue in queues]
        name = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        super().__init__(
            names, name=name, connection=connection, worker_ttl=WORKER_TTL, prepare_for_work=False
        )
        self.hostname, self.pid, self.ip_address = socket.gethostname(), os.getpid(), "unknown"
        self.settings = settings
        self.mode = mode or settings.worker_mode
        self.events: tuple[WorkerEvents, ...] = (LogEvents(), *events)
        self.queue_list = names
        self.store = WorkerStore(
            connection, self.key, name, names, int(3 * settings.heartbeat_interval + 5), WORKER_TTL + 60
        )
        serializer = make_serializer(settings.serializer, settings.signing_key, settings.old_signing_keys)
        self.runner = JobRunner(
            settings, registry, serializer, functions, ProgressWriter(connection, serializer)
        )
        self.maintenance = Maintenance(connection, names, settings.maintenance_interval, name)
        self._stop = threading.Event()
        self._cold = False
        self._signal_at = 0.0
        self._current: Claim | None = None
        self._in_job = False
        self._next_reply: ClaimReply | None = None
        self._lost: list[str] = []  # execution ids of claims whose reply was lost
        self._redis_down_since: float | None = None
        self._idle = False
        self._forker: horse.Forker | None = None  # fork mode: forks the work horses, ahead of need

    # -- the loop ---------------------------------------------------------------------------

    def work(self, burst: bool = False, max_jobs: int | None = None, **_: Any) -> bool:  # type: ignore[override]
        """Run jobs until SIGTERM/SIGINT (or, with `burst`, until the queues are empty)."""
        self._install_handlers()
        self._bootstrap()
        if self.mode == "fork":
            gc.freeze()  # what is loaded now is shared with every work horse, never collected by them
            self._forker = horse.Forker(self.runner)  # before any thread starts: no lock is inherited
            self._forker.ask()
        beat = threading.Thread(target=self._beat_loop, name="taskq-heartbeat", daemon=True)
        beat.start()
        done = 0
        try:
            while not self._stop.is_set() and (max_jobs is None or done < max_jobs):
                claim = self._next(burst)
                if claim is None:
                    if burst and self._idle:
                        break
                    continue
                done += 1
                more = not self._stop.is_set() and (max_jobs is None or done < max_jobs)
                self._record(claim, self._execute(claim), claim_next=more)
        finally:
            self._stop.set()
            beat.join(timeout=2)
            self._release_held_claim()
            self._teardown()
            if self._forker is not None:
                self._forker.close()
        log.info("worker stopped name=%s jobs=%d", self.name, done)
        return done > 0

    def _bootstrap(self) -> None:
        while True:
            try:
                self.register_birth()
                self.subscribe()
                self.set_state("started")
                break
            except redis.exceptions.AuthenticationError:
                raise  # a wrong password does not heal by waiting: the caller says so and exits
            except _REDIS_DOWN as exc:
                self._redis_down(exc)
        log.info(
            "worker started name=%s pid=%d mode=%s queues=%s",
            self.name,
            self.pid,
            self.mode,
            ",".join(self.queue_list),
        )

    def _teardown(self) -> None:
        if self._next_reply is not None and self._next_reply.claim() is not None:
            # A job claimed along with the last outcome, never run: put it back now.
            self._lost.append(self._next_reply.execution_id)
        try:
            self._recover_lost()
            self.store.flush_counts()
            self.register_death()
        except redis.exceptions.RedisError as exc:
            log.warning("worker could not record its exit: %s", exc)
        self.unsubscribe()

    def _next(self, burst: bool) -> Claim | None:
        """The next claimed job, or None after waiting for one (not waiting with `burst`)."""
        self._idle = False
        reply, self._next_reply = self._next_reply, None
        if reply is None:
            execution_id = new_execution_id()
            try:
                self._recover_lost()
                reply = self.store.claim(execution_id)
                self._redis_back()
            except _REDIS_DOWN as exc:
                self._remember_lost(execution_id)
                self._redis_down(exc)
                return None
            except redis.exceptions.ResponseError as exc:
                log.error("claim refused by Redis: %s", exc)
                self._stop.wait(1.0)
                return None
        claim = reply.claim()
        if claim is None:
            self._idle = True
            if not burst:
                self._wait_for_work(None if reply.suspended else reply.next_due, reply.suspended)
        return claim

    def _release_held_claim(self) -> None:
        """A job claimed for the next turn (while idle, or with the last outcome) goes back."""
        held, self._next_reply = self._next_reply, None
        claim = held.claim() if held is not None else None
        if claim is None:
            return
        try:
            self.store.fail(claim, "requeue", "", "Worker stopped before running this job; put back")
            log.info("job requeued id=%s reason=worker stopping", claim.job_id)
        except _REDIS_DOWN as exc:
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

    def _wait_for_work(self, next_due: float | None, suspended: bool) -> None:
        """Block until a producer pushes a wake-up token, a scheduled job is due, or `idle_poll` passes."""
        if suspended:
            self._stop.wait(1.0)
            return
        timeout = self.settings.idle_poll
        if next_due is not None:
            timeout = min(timeout, max(0.01, next_due - time.time()))
        execution_id = new_execution_id()
        try:
            self._next_reply = self.store.wait_and_claim(
                [keys.wake(queue) for queue in self.queue_list], timeout, execution_id
            )
        except _REDIS_DOWN as exc:
            self._remember_lost(execution_id)
            self._redis_down(exc)
        except redis.exceptions.ResponseError as exc:
            log.error("claim refused by Redis: %s", exc)
            self._stop.wait(1.0)

    # -- running a job ----------------------------------------------------------------------

    def _execute(self, claim: Claim) -> Outcome:
        self._emit("job_started", claim)
        self._current = claim
        try:
            return self._run_forked(claim) if self.mode == "fork" else self._run_inline(claim)
        finally:
            self._current = None
            self._stopped_job_id = None  # a stop is for this run only

    def _run_forked(self, claim: Claim) -> Outcome:
        forker = self._working_forker()
        try:
            spare = forker.spare()
        except horse.ForkerGoneError:
            forker = self._working_forker(restart=True)
            spare = forker.spare()
        child = horse.hand(spare, claim)
        self._horse_pid = child.pid
        # A stop that came after the claim but before the pid was known found nothing to kill.
        if self._stopped_job_id == claim.job_id:
            horse.kill_group(child.pid)
        if not self._stop.is_set():
            with contextlib.suppress(horse.ForkerGoneError):  # seen, and a new one started, next job
                forker.ask()  # the next horse forks while this job runs on the other core
        try:
            timeout = (claim.record.timeout or self.settings.job_timeout) + KILL_GRACE
            outcome, ended = horse.watch(child, claim, timeout, forker)
        finally:
            self._horse_pid = 0
        if outcome is not None:
            return outcome
        if self._stopped_job_id == claim.job_id:
            return Outcome("stopped", error="Job stopped by request; work horse killed")
        if self._cold:
            return Outcome("requeue", error="Worker shut down cold; job put back")
        return Outcome.failure(f"WorkHorseTerminated: {ended}", retryable=True)

    def _working_forker(self, restart: bool = False) -> horse.Forker:
        """The forker; a new one if it is gone (killed, say, by the OOM killer)."""
        if self._forker is None or restart:
            if self._forker is not None:
                log.warning("the work-horse forker is gone; starting a new one")
                with contextlib.suppress(Exception):
                    self._forker.close(timeout=1.0)
            self._forker = horse.Forker(self.runner)
        return self._forker

    def _run_inline(self, claim: Claim) -> Outcome:
        self._in_job = True
        try:
            if self._stopped_job_id == claim.job_id:  # stopped before it was running: see _run_forked
                raise JobStopped
            return run_inline(self.runner, claim)
        except ColdShutdown:
            return Outcome("requeue", error="Worker shut down cold; job put back")
        except JobStopped:
            return Outcome("stopped", error="Job stopped by request")
        finally:
            self._in_job = False

    def _beat_loop(self) -> None:
        """Heartbeats (inline jobs, the worker, its counters) and maintenance, off the main thread."""
        while not self._stop.wait(self.settings.heartbeat_interval / 2):
            self._beat()
            if self.maintenance.due():
                try:
                    for queue, (requeued, failed) in self.maintenance.run().items():
                        if requeued or failed:
                            self._emit("jobs_reaped", queue, requeued, failed)
                except redis.exceptions.RedisError as exc:
                    log.warning("maintenance skipped: %s", exc)

    def _beat(self) -> None:
        try:
            self.store.heartbeat(self._current)
        except redis.exceptions.RedisError as exc:
            log.warning("heartbeat failed: %s", exc)

    # -- recording the outcome --------------------------------------------------------------

    def _record(self, claim: Claim, outcome: Outcome, claim_next: bool) -> None:
        """Write the outcome (and, after a success, claim the next job in the same call).

        The scripts are idempotent per execution, so retrying through a Redis outage is safe.
        A combined call that fails is retried without its claim part, whose id is remembered so
        that whatever it may have claimed is put back.
        """
        kind: str = outcome.kind
        if kind == "finished":
            next_execution = new_execution_id() if claim_next else None
            try:
                self._next_reply = self.store.finish(claim, outcome.return_blob, next_execution)
            except _REDIS_DOWN as exc:
                if next_execution is not None:
                    self._remember_lost(next_execution)
                self._redis_down(exc)
                self._patiently(lambda: self.store.finish(claim, outcome.return_blob, None))
        else:
            kind, retry_at = self._failure_kind(claim, outcome)
            self._patiently(lambda: self.store.fail(claim, kind, retry_at, outcome.error))
        self._emit("job_ended", claim, _ENDING[kind], outcome, time.time() - claim.started)

    def _failure_kind(self, claim: Claim, outcome: Outcome) -> tuple[str, str]:
        record = claim.record
        if outcome.kind != "failed":
            return outcome.kind, ""
        if not outcome.retryable or record.retries_left <= 0:
            return "failed", ""
        index = max(len(record.retry_intervals) - record.retries_left, 0)
        wait = record.retry_intervals[index] if index < len(record.retry_intervals) else 0
        return "retry", repr(time.time() + wait) if wait > 0 else ""

    def _patiently(self, call: Callable[[], Any]) -> None:
        deadline = time.monotonic() + RECORD_PATIENCE
        while True:
            try:
                call()
                self._redis_back()
                return
            except _REDIS_DOWN as exc:
                if time.monotonic() > deadline:
                    log.error(
                        "gave up recording a job outcome after %.0fs; the reaper will retake it",
                        RECORD_PATIENCE,
                    )
                    return
                self._redis_down(exc)

    def _emit(self, hook: str, *args: Any) -> None:
        for observer in self.events:
            try:
                getattr(observer, hook)(*args)
            except Exception:
                log.exception("worker event observer %r failed on %s", observer, hook)

    def _redis_down(self, exc: Exception) -> None:
        if self._redis_down_since is None:
            self._redis_down_since = time.monotonic()
            log.error("Redis unreachable, retrying: %s", exc)
        self._stop.wait(min(2.0, 0.1 * 2 ** min(5, int(time.monotonic() - self._redis_down_since))))

    def _redis_back(self) -> None:
        if self._redis_down_since is not None:
            log.warning("Redis reachable again after %.1fs", time.monotonic() - self._redis_down_since)
            self._redis_down_since = None

    # -- signals and commands ---------------------------------------------------------------

    def _install_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGUSR1, self._on_interrupt_job)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if not self._stop.is_set():
            self._signal_at = now
            self._stop.set()
            log.info("worker stopping after the current job (signal %s); send it again to stop now", signum)
        elif now - self._signal_at >= 1.0 and not self._cold:
            self._cold = True
            log.warning("worker cold shutdown: the current job is put back")
            if self._horse_pid:
                horse.kill_group(self._horse_pid)
            elif self._in_job:
                raise ColdShutdown

    def _on_interrupt_job(self, signum: int, frame: FrameType | None) -> None:
        claim = self._current
        if self._in_job and claim is not None and self._stopped_job_id == claim.job_id:
            raise JobStopped

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """rq's stop-job / kill-horse commands land here (from the pubsub thread)."""
        if self._horse_pid:
            horse.kill_group(self._horse_pid)
        elif self._in_job and (main := threading.main_thread().ident) is not None:
            signal.pthread_kill(main, signal.SIGUSR1)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._on_stop_signal(signum, frame)
