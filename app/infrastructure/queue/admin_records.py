"""What `QueueAdmin` returns: frozen records of the queues, the workers and the failed jobs,
decoded from rq's hashes, and their JSON form for `--json`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from app.infrastructure.queue.directory import JOBS_FIELD, decode_jobs
from app.infrastructure.queue.record import JobRecord, parse_rq_time, summarize_error, text
from app.infrastructure.queue.schema import WorkerField


@dataclass(frozen=True)
class QueueCounts:
    """How many jobs of one queue are in each state, and how long the oldest queued one has waited."""

    queue: str
    queued: int
    scheduled: int
    deferred: int
    started: int
    finished: int
    failed: int
    canceled: int
    oldest_queued_age: float | None
    paused: bool = False


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker, as it registered itself (rq's `rq:worker:<name>` hash)."""

    name: str
    host: str
    pid: int | None
    state: str
    queues: tuple[str, ...]
    current_job: str | None
    last_heartbeat: datetime | None
    birth: datetime | None
    successful: int
    failed: int
    jobs: dict[str, int] = field(default_factory=dict)  # the jobs it knows: path -> params version
    taskq: bool = True  # False: not a taskq worker (a plain `rq worker`), yet it takes our jobs
    stale: bool = False  # no heartbeat for longer than a live worker leaves (killed, stuck, cut off)
    concurrency: int = 1  # jobs it runs at once (`--concurrency N`)


@dataclass(frozen=True)
class WaitingJob:
    """A job handed back by workers that do not know it, waiting for one that does."""

    id: str
    queue: str
    job_name: str
    version: int
    since: datetime | None  # first handed back
    status: str


@dataclass(frozen=True)
class LimitUse:
    """One limit in force: how many jobs of that name (per key: over every key) run and wait."""

    job_name: str
    kind: str  # concurrency, rate, concurrency_per_key, rate_per_key
    allowed: str  # "2", "10/1000ms"
    running: int  # holding a slot (concurrency), or started within the window (rate)
    waiting: int  # set aside until the limit lets them run
    keys: int  # per-key limits: the keys seen


@dataclass(frozen=True)
class FailedJob:
    """One entry of a failed registry: a job that failed for good, or was stopped."""

    id: str
    queue: str
    job_name: str
    status: str
    attempts: int
    ended_at: datetime | None
    error: str | None


def counts_of(queue: str, replies: Sequence[Any], oldest: float | None) -> QueueCounts:
    queued, scheduled, deferred, started, finished, failed, canceled, paused = (int(n) for n in replies)
    return QueueCounts(
        queue, queued, scheduled, deferred, started, finished, failed, canceled, oldest, bool(paused)
    )


def worker_of(name: str, fields: dict[bytes, bytes]) -> WorkerInfo:
    def get(field: str) -> str | None:
        raw = fields.get(field.encode())
        return text(raw) if raw else None

    pid = get("pid")
    concurrency = get(WorkerField.CONCURRENCY) or "1"
    return WorkerInfo(
        name=name,
        host=get("hostname") or "?",
        pid=int(pid) if pid and pid.isdigit() else None,
        state=get(WorkerField.STATE) or "?",
        queues=tuple((get("queues") or "").split(",")) if get("queues") else (),
        current_job=get(WorkerField.CURRENT_JOB),
        last_heartbeat=parse_rq_time(fields.get(WorkerField.LAST_HEARTBEAT.encode())),
        birth=parse_rq_time(fields.get(b"birth")),
        successful=int(get(WorkerField.SUCCESSFUL) or 0),
        failed=int(get(WorkerField.FAILED) or 0),
        jobs=decode_jobs(fields.get(JOBS_FIELD.encode())),
        taskq=WorkerField.TASKQ.encode() in fields,
        concurrency=int(concurrency) if concurrency.isdigit() else 1,  # written by hand: 1
    )


def waiting_of(
    job_id: str, queue: str, fields: Sequence[bytes | None], attempts_then: float
) -> WaitingJob | None:
    """The job if it still waits: queued or scheduled, and not run since it was last handed back
    (the hand-back index scores each id by its attempts then); None for anything else."""
    status, attempts, description, version, since = (text(v) if v else "" for v in fields)
    try:
        if status not in ("queued", "scheduled") or int(attempts or 0) != int(attempts_then):
            return None
        first = datetime.fromtimestamp(float(since), tz=timezone.utc) if since else None
        return WaitingJob(job_id, queue, description.partition("(")[0], int(version or 1), first, status)
    except (ValueError, OverflowError, OSError):
        return None


def failed_of(record: JobRecord, queue: str) -> FailedJob:
    return FailedJob(
        id=record.id,
        queue=queue,
        job_name=record.job_name,
        status=record.status,
        attempts=record.attempts,
        ended_at=record.ended_at,
        error=summarize_error(record.error_text()),
    )


def as_json(item: QueueCounts | WorkerInfo | FailedJob | LimitUse | WaitingJob) -> dict[str, Any]:
    """A JSON-safe dict of one of this module's records (times as ISO 8601), for `--json`."""
    return {
        name: value.isoformat()
        if isinstance(value, datetime)
        else list(value)
        if isinstance(value, tuple)
        else value
        for name, value in dataclasses.asdict(item).items()
    }
