"""`--concurrency N`: one worker process, an asyncio loop running up to N claimed jobs at once.

Each job keeps everything a job has in the other modes: its own claim (execution id), heartbeat,
timeout, progress, stop and cancel, and the same crash safety (every claim is in the queue's
started registry under this worker's execution id, so a SIGKILL sends all N back through the
reaper). An `async def` job runs on the loop; a plain `def` job runs on a thread of a pool of N
(so it neither blocks the loop nor waits for a free loop).

What the loop cannot be trusted with lives on OS threads beside it:

- `ConcurrentUpkeep` (the heartbeat thread): beats every running claim, so a job that blocks
  the loop (`time.sleep(5)` in an `async def`) is not taken for dead.
- `Watchdog`: measures the loop's lag (a tick the loop must keep; a warning log line and the
  `loop_blocked`/`loop_lag` events, hence the `taskq_event_loop_*` metrics), and enforces the
  timeouts the loop cannot: a job still running `KILL_GRACE` after its timeout is interrupted
  (`JobTimeoutException` raised in the loop's thread from a signal handler while that job's task
  is the one running, or in its pool thread); one still running `RECYCLE_GRACE` later (stuck
  in C code, or swallowing the exception) makes the watchdog record it failed, put the process's
  other running jobs back in their queues, and end the process (exit 6) for its supervisor to
  start again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import ctypes
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import Any

from rq.timeouts import JobTimeoutException

from app.exits import Exit
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.schema import Ending
from app.infrastructure.queue.store import Claim, ClaimReply, new_execution_id
from app.worker.execution import ColdShutdown, JobRunner, JobStopped, Outcome, Settled, settle
from app.worker.upkeep import Upkeep
from app.worker.worker import Worker

log = logging.getLogger("taskq.worker")

#: How often the loop ticks for the watchdog, which measures how late the tick is (the lag).
LAG_TICK = 0.05
#: A lag past this (seconds) is a blocked loop: logged once per episode, and counted.
LAG_WARN = 0.25
#: After its timeout, a job the loop did not end (the loop is blocked) is interrupted this much later.
KILL_GRACE = 1.0
#: After the interrupt, a job still running this much later makes the worker recycle its process.
RECYCLE_GRACE = 5.0
_STOPPED = "Job stopped by request"
_PUT_BACK = "Worker shut down cold; job put back"
_NOT_RUN = "Worker stopped before running this job; put back"
#: The GIL's switch interval in a concurrent worker: the recorder and heartbeat threads get it
#: within a millisecond of asking, not Python's default 5 ms (a slot idle that long per job).
SWITCH_INTERVAL = 0.001
#: Threads writing outcomes: a round trip each at a time, so several keep a slot's gap between
#: one job's end and the next one's start short when many jobs end together.
RECORDERS = 4
#: Jobs claimed ahead of a free slot: concurrency / this. A slot that frees starts the next job at
#: once, while the finish that claims its replacement is in flight (measured on the "io drain"
#: bench row, 2-core VM under load: concurrency/10 ahead left slots idle 1 job in 4, /2 1 in 20).
#: They are claims like the running ones: heartbeated, put back on a stop, reaped after a SIGKILL.
AHEAD_DIVISOR = 2


@dataclass(eq=False)
class Running:
    """One running job: its claim, its task on the loop, and what was asked of it."""

    claim: Claim
    deadline: float  # time.monotonic() of its timeout
    task: asyncio.Task[None] | None = None
    thread: int | None = None  # the pool thread running a plain `def` job, while it runs
    stop: bool = False  # rq's stop-job asked for it
    cold: bool = False  # a cold shutdown put it back
    interrupted: float = 0.0  # when the watchdog interrupted it (monotonic)
    lost: bool = False  # the reaper gave it to another worker


class _ConcurrentMode:
    """What `Worker` calls its mode: here only a name and rq's kill-horse (which stops every job)."""

    def __init__(self, worker: ConcurrentWorker) -> None:
        self.worker = worker
        self.name = f"async (concurrency {worker.concurrency})"

    def start(self) -> None:
        pass

    def run(self, claim: Claim) -> Outcome:  # never called: jobs run through `_run`
        raise NotImplementedError

    def kill(self) -> None:
        for entry in self.worker.snapshot():
            self.worker.interrupt(entry, JobStopped)

    def close(self) -> None:
        pass


class ConcurrentWorker(Worker):
    """A `Worker` whose loop runs up to `concurrency` jobs at once on an asyncio event loop."""

    def __init__(self, *, concurrency: int, runner: JobRunner, **kwargs: Any) -> None:
        self._local = threading.local()  # before Worker's __init__, which sets `_next_reply`
        super().__init__(runner=runner, mode="inline", **kwargs)
        self.concurrency = concurrency
        self.runner = runner
        self.mode = _ConcurrentMode(self)
        self.shutdown.on_cold = self._cold
        self.shutdown.on_stop_job = self._stop_job
        self.running: dict[str, Running] = {}  # by execution id; read by the upkeep and watchdog threads
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="taskq-job")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._waiter: asyncio.Future[ClaimReply | None] | None = None
        self._stops: set[str] = set()  # job ids rq's stop-job asked for, before or while they run
        self._started = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting_on_limits = False
        self._recording = 0  # outcomes handed to the recorder thread, not yet written
        self.ahead = max(1, concurrency // AHEAD_DIVISOR)  # jobs claimed ahead of a free slot, at most
        self._ahead: collections.deque[Claim] = collections.deque()
        self._records: queue.SimpleQueue[tuple[Claim, Outcome, bool] | None] = queue.SimpleQueue()
        self._max_jobs: int | None = None
        self.last_tick = time.monotonic()
        self.target: Running | None = None  # the job the watchdog is interrupting on the loop's thread

    # -- the threads' view --------------------------------------------------------------------

    @property
    def _next_reply(self) -> ClaimReply | None:
        """Per thread: each recorder thread's `_record` leaves the job its finish claimed here."""
        reply: ClaimReply | None = getattr(self._local, "next_reply", None)
        return reply

    @_next_reply.setter
    def _next_reply(self, reply: ClaimReply | None) -> None:
        self._local.next_reply = reply

    def snapshot(self) -> list[Running]:
        with self._lock:
            return list(self.running.values())

    def held_ahead(self) -> list[Claim]:
        with self._lock:
            return list(self._ahead)

    def interrupt(self, entry: Running, exc: type[BaseException]) -> None:
        """Cut a running job short from any thread: its pool thread gets `exc`; a loop job is
        cancelled (stop, cold) or, for a timeout, interrupted on the loop's thread (`_on_interrupt`)."""
        if entry.thread is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(entry.thread), ctypes.py_object(exc))
            return
        if exc is JobTimeoutException:
            self.target = entry
            main = threading.main_thread().ident
            if main is not None:
                signal.pthread_kill(main, signal.SIGUSR1)
            return
        loop, task = self._loop, entry.task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        """On the loop's thread, between two bytecodes of whatever blocks it: if that is the target
        job's task, the job gets its timeout there (anything else is left alone)."""
        target = self.target
        if target is None or target.task is None:
            return
        try:
            current = asyncio.current_task()
        except RuntimeError:
            return
        if current is target.task:
            self.target = None
            raise JobTimeoutException(
                f"Task exceeded maximum timeout value (the loop was blocked by {target.claim.job_id})"
            )

    def _stop_job(self, job_id: str) -> None:
        """rq's stop-job (pubsub thread): the job ends `stopped`, running or not yet running."""
        self._stops.add(job_id)
        for entry in self.snapshot():
            if entry.claim.job_id == job_id:
                entry.stop = True
                self.interrupt(entry, JobStopped)

    def _cold(self) -> None:
        """A second SIGTERM (in the signal handler): every running job is cut short and put back."""
        for entry in self.snapshot():
            entry.cold = True
            self.interrupt(entry, ColdShutdown)
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the loop ------------------------------------------------------------------------------

    def work(self, burst: bool = False, max_jobs: int | None = None) -> int:
        """Run jobs, up to `concurrency` at once, until SIGTERM/SIGINT (or, with `burst`, until
        the queues are empty); the number of jobs started."""
        self.shutdown.install()
        signal.signal(signal.SIGUSR1, self._on_interrupt)
        sys.setswitchinterval(SWITCH_INTERVAL)
        if not self._register(burst):
            return 0
        upkeep = ConcurrentUpkeep(self, self.settings.heartbeat_interval / 2)
        watchdog = Watchdog(self)
        upkeep.start()
        watchdog.start()
        if self.scheduler is not None:
            self.scheduler.start()
        self._max_jobs = max_jobs
        try:
            asyncio.run(self._main(burst))
        finally:
            if self.scheduler is not None:
                self.scheduler.stop()
            watchdog.stop()
            upkeep.stop()
            self._release_held_claim()
            self._teardown()
            self._pool.shutdown(wait=False, cancel_futures=True)
        log.info("worker stopped name=%s jobs=%d", self.name, self._started)
        return self._started

    async def _main(self, burst: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        recorders = [
            threading.Thread(target=self._recorder, name=f"taskq-recorder-{i}", daemon=True)
            for i in range(RECORDERS)
        ]
        for recorder in recorders:
            recorder.start()
        ticker = asyncio.create_task(self._tick())
        tasks = self._tasks
        try:
            while not self.shutdown.warm.is_set() and not self._enough():
                if self._reserved() >= self.concurrency + self.ahead or self._waiter is not None:
                    await self._sleep()
                    continue
                claim = await self._claim_now()
                if claim is not None:
                    self._take(claim)
                    continue
                if burst and self._idle and not self._reserved():
                    break
                if burst and not self._waiting_on_limits:
                    await self._sleep()  # a running job may release dependents: they come with its finish
                else:
                    self._start_waiter()
            while tasks or self._waiter is not None or self._recording or self._ahead:
                self._put_back_ahead()
                await self._sleep()
        finally:
            ticker.cancel()
            for _ in recorders:
                self._records.put(None)
            for recorder in recorders:
                await asyncio.to_thread(recorder.join)

    def _enough(self) -> bool:
        return self._max_jobs is not None and self._started + len(self._ahead) >= self._max_jobs

    def _reserved(self) -> int:
        """Claims held or coming: running jobs, jobs claimed ahead, outcomes being written (each
        may claim the next job), and a pending wait-and-claim."""
        return len(self.running) + len(self._ahead) + self._recording + (1 if self._waiter is not None else 0)

    def _take(self, claim: Claim) -> None:
        """A claimed job: it starts if a slot is free, else it waits, claimed, for the next one."""
        if len(self.running) < self.concurrency and not self.shutdown.warm.is_set():
            self._start(claim)
        else:
            with self._lock:
                self._ahead.append(claim)

    def _put_back_ahead(self) -> None:
        """The worker stops: jobs claimed ahead go back to their queues, never run here."""
        while self._ahead:
            with self._lock:
                claim = self._ahead.popleft()
            self._recording += 1
            self._records.put((claim, Outcome(Ending.REQUEUE, error=_NOT_RUN), False))

    async def _sleep(self) -> None:
        """Until a slot frees, a wait-and-claim returns, a stop is asked, or a tick passes."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=self.settings.idle_poll)
        self._wake.clear()  # no await since it was set: nothing set it again unseen

    async def _tick(self) -> None:
        """Keeps `last_tick` fresh; the watchdog reads how late it is. Wakes the loop on a stop."""
        assert self._wake is not None
        while True:
            self.last_tick = time.monotonic()
            if self.shutdown.warm.is_set():
                self._wake.set()
            await asyncio.sleep(LAG_TICK)

    async def _claim_now(self) -> Claim | None:
        """Claim one job without waiting (the claim script, on the loop: one short round trip)."""
        self._idle = False
        self._waiting_on_limits = False
        execution_id = new_execution_id()
        try:
            reply = self._claim_once(execution_id)
        except QueueError as exc:
            await asyncio.to_thread(self._claim_failed, exc, execution_id)
            return None
        return self._from_reply(reply)

    def _from_reply(self, reply: ClaimReply) -> Claim | None:
        claim = reply.claim()
        if claim is None:
            self._idle = not reply.waiting
            self._waiting_on_limits = reply.waiting
            self._warn_skipped(reply.skipped)
        return claim

    def _start_waiter(self) -> None:
        """Wait for a producer's wake-up token (BLPOP) and claim, on a thread, not on the loop."""
        assert self._loop is not None
        execution_id = new_execution_id()
        waiter = self._loop.run_in_executor(None, self._wait_and_claim, execution_id)
        self._waiter = waiter
        waiter.add_done_callback(self._waited)

    def _wait_and_claim(self, execution_id: str) -> ClaimReply | None:
        try:
            return self.store.wait_and_claim(self.settings.idle_poll, execution_id)
        except QueueError as exc:
            self._claim_failed(exc, execution_id)
            return None

    def _waited(self, waiter: asyncio.Future[ClaimReply | None]) -> None:
        self._waiter = None
        reply = None if waiter.cancelled() or waiter.exception() else waiter.result()
        claim = self._from_reply(reply) if reply is not None else None
        if claim is not None:
            self._take(claim)
        assert self._wake is not None
        self._wake.set()

    def _start(self, claim: Claim) -> None:
        assert self._loop is not None
        self._started += 1
        self.emit("job_started", claim)
        entry = Running(claim, time.monotonic() + self.runner.timeout(claim))
        with self._lock:
            self.running[claim.execution_id] = entry
        entry.task = self._loop.create_task(self._run(entry))
        self._tasks.add(entry.task)
        entry.task.add_done_callback(self._tasks.discard)

    async def _run(self, entry: Running) -> None:
        claim = entry.claim
        outcome = await self._outcome(entry)
        with self._lock:
            self.running.pop(claim.execution_id, None)
            ahead = self._ahead.popleft() if self._ahead and not self.shutdown.warm.is_set() else None
        if ahead is not None:
            self._start(ahead)  # the free slot's next job was claimed ahead: no round trip to wait for
        self._stops.discard(claim.job_id)
        # The outcome is written off the loop; the finish claims the next job in the same round
        # trip, to be run or held ahead (`_recorded`).
        self._recording += 1
        self._records.put((claim, outcome, not self.shutdown.warm.is_set() and not self._enough()))

    def _recorder(self) -> None:
        """The recorder thread: writes outcomes (and claims the next jobs) off the loop, so a
        round trip to Redis (or riding out an outage) never holds up the running jobs."""
        loop = self._loop
        assert loop is not None
        while (item := self._records.get()) is not None:
            claim, outcome, claim_next = item
            self._record(claim, outcome, claim_next=claim_next)  # fenced: a lost job's outcome is dropped
            reply, self._next_reply = self._next_reply, None
            loop.call_soon_threadsafe(self._recorded, reply)

    def _recorded(self, reply: ClaimReply | None) -> None:
        """On the loop: an outcome was written; the job its finish claimed takes the slot."""
        self._recording -= 1
        following = self._from_reply(reply) if reply is not None else None
        if following is not None:
            self._take(following)
        assert self._wake is not None
        self._wake.set()

    async def _outcome(self, entry: Running) -> Outcome:
        """How the job ended; never raises (a cancel is a stop, a cold shutdown or a lost job)."""
        claim = entry.claim
        if claim.job_id in self._stops:  # asked before it was running
            return Outcome(Ending.STOPPED, error=_STOPPED)
        try:
            return await self.runner.run_async(claim, lambda call: self._offload(entry, call))
        except (asyncio.CancelledError, JobStopped, ColdShutdown):
            if entry.cold or self.shutdown.cold.is_set():
                return Outcome(Ending.REQUEUE, error=_PUT_BACK)
            if entry.stop:
                return Outcome(Ending.STOPPED, error=_STOPPED)
            return Outcome.failure("WorkHorseTerminated: the job was cut short", retryable=True)
        except BaseException as exc:  # a job must never take the loop down with it
            log.exception("job %s ended the worker's way, not its own", claim.job_id)
            return Outcome.failure(f"{type(exc).__name__}: {exc}", retryable=True)

    async def _offload(self, entry: Running, call: Callable[[], Any]) -> Any:
        """A plain `def` job on a pool thread, with the job's context (`current_job()` works)."""
        context = contextvars.copy_context()

        def run() -> Any:
            entry.thread = threading.get_ident()
            try:
                return context.run(call)
            finally:
                entry.thread = None

        assert self._loop is not None
        return await self._loop.run_in_executor(self._pool, run)


class ConcurrentUpkeep(Upkeep):
    """The heartbeat thread of a concurrent worker: every running claim is beaten, each beat."""

    worker: ConcurrentWorker

    def beat(self) -> None:
        worker = self.worker
        entries: list[Running | None] = [*worker.snapshot()]
        try:
            for held in worker.held_ahead():  # claimed, not started yet: their deadline moves too
                worker.store.heartbeat(held)
            for entry in entries or [None]:
                claim = entry.claim if entry is not None else None
                beat = worker.store.heartbeat(claim)
                if not beat.registered:
                    log.warning("worker registered again name=%s: Redis had forgotten it", worker.name)
                    worker.presence.restore()
                # Not ours, and still running here (a job leaves `running` before its outcome is
                # written, so one that ended while the beat was in flight is not mistaken for lost).
                if (
                    entry is not None
                    and beat.job_ours is False
                    and not entry.lost
                    and worker.running.get(entry.claim.execution_id) is entry
                ):
                    entry.lost = True
                    log.warning(
                        "job taken back by the reaper id=%s: this worker missed its heartbeat deadline; "
                        "the job is cut short here and its outcome will be dropped",
                        entry.claim.job_id,
                    )
                    worker.interrupt(entry, JobStopped)
        except QueueError as exc:
            log.warning("heartbeat failed: %s", exc)


class Watchdog(Upkeep):
    """The thread that measures the loop's lag and enforces the timeouts a blocked loop cannot."""

    worker: ConcurrentWorker

    def __init__(self, worker: ConcurrentWorker, every: float = 0.05) -> None:
        super().__init__(worker, every, name="taskq-watchdog")
        self._blocked_since: float | None = None
        self._reported = 0.0

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            now = time.monotonic()
            self.measure(now)
            for entry in self.worker.snapshot():
                self.enforce(entry, now)

    def measure(self, now: float) -> float:
        """The loop's lag now; a new blocked episode is logged and reported once."""
        lag = max(0.0, now - self.worker.last_tick - LAG_TICK)
        if now - self._reported >= 1.0:
            self._reported = now
            self.worker.emit("loop_lag", lag)
        if lag < LAG_WARN:
            self._blocked_since = None
            return lag
        if self._blocked_since is None:
            self._blocked_since = now
            job = self._running_job()
            log.warning(
                "event loop blocked for %.2f s job_id=%s: an async job is calling blocking code (use "
                "`await`, or a plain def job, which runs on a thread); heartbeats and timeouts go on",
                lag,
                job.claim.job_id if job is not None else "-",
            )
            self.worker.emit("loop_blocked", lag, job.claim if job is not None else None)
        return lag

    def _running_job(self) -> Running | None:
        """The job whose task the loop is running now (the one blocking it), if any."""
        loop = self.worker._loop
        if loop is None:
            return None
        task = asyncio.current_task(loop)  # read from this thread: a dict lookup, no loop needed
        return next((e for e in self.worker.snapshot() if e.task is task and task is not None), None)

    def enforce(self, entry: Running, now: float) -> None:
        if not entry.interrupted and now > entry.deadline + KILL_GRACE:
            entry.interrupted = now
            log.warning(
                "job %s still running %.1f s past its timeout: interrupting it",
                entry.claim.job_id,
                KILL_GRACE,
            )
            self.worker.interrupt(entry, JobTimeoutException)
        elif entry.interrupted and now > entry.interrupted + RECYCLE_GRACE:
            self.recycle(entry)
        elif entry.interrupted and entry.thread is None and entry.task is not None and not entry.task.done():
            self.worker.interrupt(entry, JobTimeoutException)  # again: the signal may have found another task

    def recycle(self, stuck: Running) -> None:
        """The job ignores its timeout: record it, put the others back, end the process (exit 6)."""
        worker = self.worker
        log.error(
            "job %s ignored its timeout (blocked in code that cannot be interrupted, or swallowing the "
            "exception): recycling this worker process; its %d other running jobs go back to their queues",
            stuck.claim.job_id,
            len(worker.running) - 1,
        )
        error = "JobTimeoutException: the job ignored its timeout; the worker process was recycled"
        put_back = f"Worker recycled because job {stuck.claim.job_id} ignored its timeout; put back"
        held = [(entry.claim, entry is stuck) for entry in worker.snapshot()]
        held += [(claim, False) for claim in worker.held_ahead()]  # claimed ahead, never started
        for claim, is_stuck in held:
            if is_stuck:
                settled = settle(claim.record, Outcome.failure(error, retryable=True))
            else:
                settled = Settled(Ending.REQUEUE, None, put_back)
            try:
                worker.store.fail(claim, settled.ending, settled.retry_in, settled.error)
            except QueueError as exc:
                log.warning("job %s not put back (%s); the reaper takes it back", claim.job_id, exc)
        try:
            worker.store.flush_counts()
            worker.presence.deregister()
        except QueueError:
            pass
        logging.shutdown()
        os._exit(Exit.RECYCLED)
