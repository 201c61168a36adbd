"""The worker loop: claim a job atomically, run it (forked or inline), record how it went.

It is an rq `BaseWorker` (so `rq info`, rq-dashboard and rq's stop/shutdown commands see and
steer it) whose hot path is three Lua scripts instead of rq's ~18 round trips per job:
dequeue (claim and register as started, in one step), finish, fail. Signals only set flags,
so a SIGTERM can never land between two halves of a state change (rq#2236).
"""

from __future__ import annotations

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
from app.infrastructure.queue import keys, scripts
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.record import JobRecord, encode_error, rq_time, text
from app.infrastructure.queue.serialization import make_serializer
from app.worker.events import LogEvents, WorkerEvents
from app.worker.execution import (
    Claim,
    ColdShutdown,
    JobRunner,
    JobStopped,
    Outcome,
    kill_group,
    run_inline,
    start_forked,
    watch_forked,
)
from app.worker.maintenance import Maintenance
from app.worker.progress import ProgressWriter

log = logging.getLogger("taskq.worker")

WORKER_TTL = 20
KILL_GRACE = 5.0
RECORD_PATIENCE = 120.0
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


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
        super().__init__(
            names,
            name=name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}",
            connection=connection,
            worker_ttl=WORKER_TTL,
            prepare_for_work=False,
        )
        self.hostname, self.pid, self.ip_address = socket.gethostname(), os.getpid(), "unknown"
        self.settings = settings
        self.mode = mode or settings.worker_mode
        self.events: tuple[WorkerEvents, ...] = (LogEvents(), *events)
        self.queue_list = names
        self.heartbeat_ttl = int(3 * settings.heartbeat_interval + 5)
        serializer = make_serializer(settings.serializer, settings.signing_key, settings.old_signing_keys)
        self.runner = JobRunner(
            settings, registry, serializer, functions, ProgressWriter(connection, serializer)
        )
        self.maintenance = Maintenance(connection, names, settings.maintenance_interval, self.name)
        self._dequeue = connection.register_script(scripts.source("dequeue"))
        self._finish = connection.register_script(scripts.source("finish"))
        self._fail = connection.register_script(scripts.source("fail"))
        self._stop = threading.Event()
        self._cold = False
        self._signal_at = 0.0
        self._current: Claim | None = None
        self._in_job = False
        self._lost_execution: str | None = None
        self._redis_down_since: float | None = None
        self._idle = False

    # -- the loop ---------------------------------------------------------------------------

    def work(self, burst: bool = False, max_jobs: int | None = None, **_: Any) -> bool:  # type: ignore[override]
        """Run jobs until SIGTERM/SIGINT (or, with `burst`, until the queues are empty)."""
        self._install_handlers()
        self._bootstrap()
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
                self._record(claim, self._execute(claim))
                done += 1
        finally:
            self._stop.set()
            beat.join(timeout=2)
            self._teardown()
        log.info("worker stopped name=%s jobs=%d", self.name, done)
        return done > 0

    def _bootstrap(self) -> None:
        while True:
            try:
                self.register_birth()
                self.subscribe()
                self.set_state("started")
                break
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
        try:
            self.register_death()
        except redis.exceptions.RedisError as exc:
            log.warning("worker could not register its death: %s", exc)
        self.unsubscribe()

    def _next(self, burst: bool) -> Claim | None:
        """Claim the next job, or wait for one (unless `burst`); None when there is none yet."""
        self._idle = False
        execution_id = uuid.uuid4().hex
        now = time.time()
        try:
            if self._lost_execution:
                self._recover(self._lost_execution)
            reply = self._dequeue(
                keys=[self.key],
                args=[
                    repr(now),
                    rq_time(now),
                    self.name,
                    execution_id,
                    self.heartbeat_ttl,
                    WORKER_TTL + 60,
                    len(self.queue_list),
                    *self.queue_list,
                ],
            )
            self._redis_back()
        except _REDIS_DOWN as exc:
            self._lost_execution = self._lost_execution or execution_id
            self._redis_down(exc)
            return None
        except redis.exceptions.ResponseError as exc:
            log.error("dequeue refused by Redis: %s", exc)
            self._stop.wait(1.0)
            return None
        if reply[0] == b"suspended":
            self._idle = True
            if not burst:
                self._stop.wait(1.0)
            return None
        if reply[0] == b"":
            self._idle = True
            if not burst:
                self._wait_for_work(float(reply[1]) if reply[1] else None)
            return None
        job_id = reply[1].decode()
        fields = dict(zip(reply[3::2], reply[4::2], strict=True))
        return Claim(
            reply[0].decode(), job_id, execution_id, int(reply[2]), JobRecord.from_hash(job_id, fields), now
        )

    def _wait_for_work(self, next_due: float | None) -> None:
        """Block until a producer pushes a wake-up token, a scheduled job is due, or `idle_poll` passes."""
        timeout = self.settings.idle_poll
        if next_due is not None:
            timeout = min(timeout, max(0.01, next_due - time.time()))
        try:
            self.connection.blpop([keys.wake(queue) for queue in self.queue_list], timeout=timeout)
        except _REDIS_DOWN as exc:
            self._redis_down(exc)

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
        run = start_forked(self.runner, claim)
        self._horse_pid = run.pid
        # A stop that came after the claim but before the pid was known found nothing to kill.
        if self._stopped_job_id == claim.job_id:
            kill_group(run.pid)
        try:
            timeout = (claim.record.timeout or self.settings.job_timeout) + KILL_GRACE
            outcome, ended = watch_forked(run, claim, self._tick, self.settings.heartbeat_interval, timeout)
        finally:
            self._horse_pid = 0
        if outcome is not None:
            return outcome
        if self._stopped_job_id == claim.job_id:
            return Outcome("stopped", error="Job stopped by request; work horse killed")
        if self._cold:
            return Outcome("requeue", error="Worker shut down cold; job put back")
        return Outcome.failure(f"WorkHorseTerminated: {ended}", retryable=True)

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

    def _tick(self) -> None:
        """Called every heartbeat interval while a forked job runs."""
        claim = self._current
        if claim is not None:
            self._heartbeat(claim)

    def _beat_loop(self) -> None:
        """Heartbeats for inline jobs, and maintenance, off the main thread."""
        while not self._stop.wait(self.settings.heartbeat_interval / 2):
            claim = self._current
            if claim is not None and self.mode == "inline":
                self._heartbeat(claim)
            if self.maintenance.due():
                try:
                    for queue, (requeued, failed) in self.maintenance.run().items():
                        if requeued or failed:
                            self._emit("jobs_reaped", queue, requeued, failed)
                except redis.exceptions.RedisError as exc:
                    log.warning("maintenance skipped: %s", exc)

    def _heartbeat(self, claim: Claim) -> None:
        now = time.time()
        ttl = self.heartbeat_ttl
        entry = f"{claim.job_id}:{claim.execution_id}"
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.zadd(keys.started(claim.queue), {entry: now + ttl}, xx=True)
                pipe.expire(f"rq:execution:{entry}", ttl)
                pipe.zadd(keys.executions(claim.job_id), {claim.execution_id: now + ttl + 60}, xx=True)
                pipe.hset(
                    self.key,
                    mapping={"last_heartbeat": rq_time(now), "current_job_working_time": now - claim.started},
                )
                pipe.expire(self.key, WORKER_TTL + 60)
                pipe.execute()
        except redis.exceptions.RedisError as exc:
            log.warning("heartbeat failed for job %s: %s", claim.job_id, exc)

    # -- recording the outcome --------------------------------------------------------------

    def _record(self, claim: Claim, outcome: Outcome) -> None:
        """Write the outcome with the finish or fail script, retrying through Redis outages.

        Both scripts are idempotent per execution, so a retry after a lost reply is harmless.
        """
        now = time.time()
        worked = repr(max(0.0, now - claim.started))
        if outcome.kind == "finished":
            call = lambda: self._finish(  # noqa: E731
                keys=[self.key],
                args=[
                    claim.job_id,
                    claim.queue,
                    claim.execution_id,
                    repr(now),
                    rq_time(now),
                    self.name,
                    outcome.return_blob,
                    repr(claim.started),
                    worked,
                ],
            )
            kind = "finished"
        else:
            kind, retry_at = self._failure_kind(claim, outcome, now)
            packed, b64 = encode_error(outcome.error)
            call = lambda: self._fail(  # noqa: E731
                keys=[self.key],
                args=[
                    claim.job_id,
                    claim.queue,
                    claim.execution_id,
                    repr(now),
                    rq_time(now),
                    self.name,
                    kind,
                    retry_at,
                    packed,
                    b64,
                    repr(claim.started),
                    worked,
                ],
            )
        self._with_patience(call)
        self._emit("job_ended", claim, _ENDING[kind], outcome, now - claim.started)

    def _emit(self, hook: str, *args: Any) -> None:
        for observer in self.events:
            try:
                getattr(observer, hook)(*args)
            except Exception:
                log.exception("worker event observer %r failed on %s", observer, hook)

    def _failure_kind(self, claim: Claim, outcome: Outcome, now: float) -> tuple[str, str]:
        record = claim.record
        if outcome.kind != "failed":
            return outcome.kind, ""
        if not outcome.retryable or record.retries_left <= 0:
            return "failed", ""
        index = max(len(record.retry_intervals) - record.retries_left, 0)
        wait = record.retry_intervals[index] if index < len(record.retry_intervals) else 0
        return "retry", repr(now + wait) if wait > 0 else ""

    def _with_patience(self, call: Callable[[], Any]) -> None:
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

    def _recover(self, execution_id: str) -> None:
        """After a dequeue whose reply was lost, put back the job it may have claimed."""
        for queue in self.queue_list:
            entries = self.connection.zscan(keys.started(queue), 0, match=f"*:{execution_id}", count=1000)[1]
            for entry, _score in entries:
                job_id = text(entry).partition(":")[0]
                now = time.time()
                packed, b64 = encode_error("Worker lost its connection while claiming this job; put back")
                self._fail(
                    keys=[self.key],
                    args=[
                        job_id,
                        queue,
                        execution_id,
                        repr(now),
                        rq_time(now),
                        self.name,
                        "requeue",
                        "",
                        packed,
                        b64,
                        repr(now),
                        "0",
                    ],
                )
                log.warning("job requeued id=%s queue=%s reason=claim reply lost", job_id, queue)
        self._lost_execution = None

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
                kill_group(self._horse_pid)
            elif self._in_job:
                raise ColdShutdown

    def _on_interrupt_job(self, signum: int, frame: FrameType | None) -> None:
        claim = self._current
        if self._in_job and claim is not None and self._stopped_job_id == claim.job_id:
            raise JobStopped

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """rq's stop-job / kill-horse commands land here (from the pubsub thread)."""
        if self._horse_pid:
            kill_group(self._horse_pid)
        elif self._in_job and (main := threading.main_thread().ident) is not None:
            signal.pthread_kill(main, signal.SIGUSR1)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._on_stop_signal(signum, frame)


_ENDING = {
    "finished": "finished",
    "failed": "failed",
    "retry": "retried",
    "stopped": "stopped",
    "requeue": "requeued",
}
