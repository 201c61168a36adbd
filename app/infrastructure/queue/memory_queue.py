"""`InMemoryQueue`: the `JobQueue` port without Redis, for the application's own unit tests.

It records what was enqueued and runs jobs inline when asked (`run_pending()`), or at once
(`run_inline=True`). It validates with the same `JobSpecBuilder` as `RQQueue` and follows the
same rules (idempotency keys, dependencies, retries with backoff, cancel, progress, TTLs); a
contract suite runs one set of cases against both. Time is a clock you can move (`advance`).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from app.config import PRIORITIES, Settings
from app.infrastructure.queue.errors import (
    DependencyError,
    JobNotFoundError,
    JobStateError,
    WaitTimeoutError,
)
from app.infrastructure.queue.import_utils import import_callable
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.job_spec import JobSpec, JobSpecBuilder
from app.infrastructure.queue.keys import check_job_id
from app.infrastructure.queue.port import JobRequest, JobStatus, JobView, Priority, Progress, RetryPolicy
from app.infrastructure.queue.record import summarize_error
from app.infrastructure.queue.serialization import make_serializer

_LIVE = frozenset(
    {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED, JobStatus.FINISHED}
)
_DOOMED = frozenset({JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})


@dataclass
class _Job:
    spec: JobSpec
    status: JobStatus
    enqueued_at: float
    run_at: float | None = None
    attempts: int = 0
    retries_left: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    result: Any = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    expires_at: float | None = None
    waiting_on: set[str] = field(default_factory=set)


class InMemoryQueue:
    """A `JobQueue` in a dict. `enqueued` lists every created job's spec, in order."""

    def __init__(
        self,
        settings: Settings | None = None,
        registry: JobRegistry | None = None,
        *,
        run_inline: bool = False,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.registry = registry or JobRegistry(extra=self.settings.extra_jobs)
        self.serializer = make_serializer(self.settings.serializer)
        self.run_inline = run_inline
        self._builder = JobSpecBuilder(self.settings, self.registry, self.serializer)
        self._offset = 0.0
        self._clock = clock or time.time
        self._jobs: dict[str, _Job] = {}
        self._order: list[str] = []
        self.enqueued: list[JobSpec] = []

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move this queue's clock forward (scheduled jobs, retries, TTLs)."""
        self._offset += seconds

    def enqueue(
        self,
        job_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        priority: Priority = "default",
        delay: timedelta | float | None = None,
        at: datetime | None = None,
        retry: int | RetryPolicy | None = None,
        timeout: float | None = None,
        result_ttl: int | None = None,
        failure_ttl: int | None = None,
        ttl: int | None = None,
        job_id: str | None = None,
        depends_on: str | Sequence[str] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """See `JobQueue.enqueue`."""
        request = JobRequest(
            job_name,
            params if params is not None else {},
            priority,
            delay,
            at,
            retry,
            timeout,
            result_ttl,
            failure_ttl,
            ttl,
            job_id,
            depends_on,
            meta,
        )
        return self.enqueue_many([request])[0]

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[str]:
        """See `JobQueue.enqueue_many`: validated first, then written all or nothing."""
        now = self.now()
        specs = [self._builder.build(request, now) for request in requests]
        pending: dict[str, JobStatus] = {}
        for spec in specs:
            if not self._is_live(spec.job_id) and spec.job_id not in pending:
                pending[spec.job_id] = self._check_dependencies(spec, pending)
        for spec in specs:
            if spec.job_id in pending:
                self._create(spec, now, pending.pop(spec.job_id))
        if self.run_inline:
            self.run_pending()
        return [spec.job_id for spec in specs]

    def get(self, job_id: str) -> JobView:
        """See `JobQueue.get`."""
        job = self._job(job_id)
        spec = job.spec
        progress = job.meta.get("progress")
        return JobView(
            id=spec.job_id,
            job_name=spec.path,
            status=job.status,
            queue=spec.queue,
            params=dict(spec.params),
            attempts=job.attempts,
            max_attempts=spec.max_attempts,
            enqueued_at=_time(job.enqueued_at),
            started_at=_time(job.started_at),
            ended_at=_time(job.ended_at),
            result=job.result if job.status is JobStatus.FINISHED else None,
            error=None if job.status is JobStatus.FINISHED else summarize_error(job.error),
            progress=Progress(**progress) if isinstance(progress, dict) else None,
            meta=dict(job.meta),
            worker=None,
        )

    def wait(self, job_id: str, timeout: float) -> JobView:
        """Runs pending jobs (this is the worker), then as `JobQueue.wait`; time does not pass."""
        self.run_pending()
        view = self.get(job_id)
        if not view.is_final:
            raise WaitTimeoutError(job_id, timeout, view.status.value)
        return view

    def cancel(self, job_id: str) -> None:
        """See `JobQueue.cancel`."""
        job = self._job(job_id)
        if job.status not in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            raise JobStateError(job_id, job.status.value, "cancel")
        self._end(job, JobStatus.CANCELED, None)

    def stop(self, job_id: str) -> None:
        """In memory a job is never running between calls: stopping is always too late or too early."""
        job = self._job(job_id)
        raise JobStateError(job_id, job.status.value, "stop")

    def run_pending(self) -> int:
        """Run every job that is queued or due, highest priority first, until none is left."""
        ran = 0
        while (job := self._next_runnable()) is not None:
            self._run(job)
            ran += 1
        return ran

    # -- internals ----------------------------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        check_job_id(job_id)
        job = self._jobs.get(job_id)
        if job is None or (job.expires_at is not None and self.now() >= job.expires_at):
            raise JobNotFoundError(job_id)
        return job

    def _is_live(self, job_id: str) -> bool:
        try:
            return self._job(job_id).status in _LIVE
        except JobNotFoundError:
            return False

    def _check_dependencies(self, spec: JobSpec, pending: Mapping[str, JobStatus]) -> JobStatus:
        waiting = False
        for dep in spec.depends_on:
            status = pending.get(dep)
            if status is None:
                try:
                    status = self._job(dep).status
                except JobNotFoundError:
                    raise DependencyError(spec.job_id, dep, None) from None
            if status in _DOOMED:
                raise DependencyError(spec.job_id, dep, status.value)
            waiting = waiting or status is not JobStatus.FINISHED
        if waiting:
            return JobStatus.DEFERRED
        return JobStatus.SCHEDULED if spec.run_at is not None else JobStatus.QUEUED

    def _create(self, spec: JobSpec, now: float, status: JobStatus) -> None:
        waiting = {d for d in spec.depends_on if self._status_or_none(d) is not JobStatus.FINISHED}
        job = _Job(
            spec,
            status,
            now,
            run_at=spec.run_at,
            retries_left=len(spec.retry_intervals),
            meta=dict(spec.meta),
            waiting_on=waiting,
        )
        if spec.ttl is not None:
            job.expires_at = now + spec.ttl
        self._jobs[spec.job_id] = job
        if spec.job_id in self._order:
            self._order.remove(spec.job_id)
        self._order.append(spec.job_id)
        self.enqueued.append(spec)

    def _status_or_none(self, job_id: str) -> JobStatus | None:
        try:
            return self._job(job_id).status
        except JobNotFoundError:
            return None

    def _next_runnable(self) -> _Job | None:
        now = self.now()
        for job_id in self._order:
            job = self._jobs[job_id]
            if job.status is JobStatus.SCHEDULED and job.run_at is not None and job.run_at <= now:
                job.status = JobStatus.QUEUED
        queued = [self._jobs[i] for i in self._order if self._jobs[i].status is JobStatus.QUEUED]
        queued = [job for job in queued if job.expires_at is None or job.expires_at > now]
        if not queued:
            return None
        return min(queued, key=lambda job: PRIORITIES.index(_priority(self.settings, job.spec.queue)))

    def _run(self, job: _Job) -> None:
        # Here this queue is the worker: it sets the same job context job code reads.
        from app.worker.runtime import JobContext, PermanentError, running

        job.status, job.attempts, job.started_at, job.expires_at = (
            JobStatus.STARTED,
            job.attempts + 1,
            self.now(),
            None,
        )

        def sink(done: int, total: int, message: str) -> None:
            job.meta["progress"] = {"done": done, "total": total, "message": message}

        context = JobContext(
            job.spec.job_id, job.spec.path, job.spec.queue, job.attempts, self.settings, sink
        )
        params = self.serializer.loads(self.serializer.dumps(dict(job.spec.params)))
        try:
            with running(context):
                value = import_callable(job.spec.path)(**params)
        except PermanentError:
            self._end(job, JobStatus.FAILED, traceback.format_exc())
            return
        except Exception:
            self._retry_or_fail(job, traceback.format_exc())
            return
        job.result = self.serializer.loads(self.serializer.dumps(value)) if value is not None else None
        self._end(job, JobStatus.FINISHED, None)

    def _retry_or_fail(self, job: _Job, error: str) -> None:
        if job.retries_left <= 0:
            self._end(job, JobStatus.FAILED, error)
            return
        intervals = job.spec.retry_intervals
        wait = intervals[max(len(intervals) - job.retries_left, 0)]
        job.retries_left -= 1
        job.error, job.ended_at = error, self.now()
        job.status = JobStatus.SCHEDULED if wait > 0 else JobStatus.QUEUED
        job.run_at = self.now() + wait
        self._order.remove(job.spec.job_id)
        self._order.append(job.spec.job_id)

    def _end(self, job: _Job, status: JobStatus, error: str | None) -> None:
        job.status, job.error, job.ended_at = status, error, self.now()
        ttl = job.spec.result_ttl if status is JobStatus.FINISHED else job.spec.failure_ttl
        job.expires_at = self.now() + ttl
        for other in self._jobs.values():
            if job.spec.job_id in other.waiting_on and other.status is JobStatus.DEFERRED:
                if status is JobStatus.FINISHED:
                    other.waiting_on.discard(job.spec.job_id)
                    if not other.waiting_on:
                        other.status = JobStatus.QUEUED
                else:
                    self._end(other, JobStatus.CANCELED, f"dependency {job.spec.job_id} did not finish")


def _priority(settings: Settings, queue: str) -> str:
    return PRIORITIES[settings.queue_names.index(queue)] if queue in settings.queue_names else "default"


def _time(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=timezone.utc) if epoch is not None else None
