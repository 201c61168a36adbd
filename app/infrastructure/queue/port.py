"""The port the application depends on (`JobQueue`) and the small frozen types it speaks.

`RQQueue` (Redis) and `InMemoryQueue` (tests) implement it; a contract suite runs the same
cases against both. Nothing here imports rq or redis.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, Protocol

Priority = Literal["high", "default", "low"]

#: The longest timeout or TTL a job may have (ten years). Past this, timers overflow (`signal.alarm`,
#: `select`): the producer refuses more, and a worker reads more (written by anyone) as unset.
MAX_SECONDS = 10 * 365 * 24 * 3600


class JobStatus(str, Enum):
    """Where a job is in its life. The last four are final."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    DEFERRED = "deferred"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED})


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a failing job up to `max_retries` times, waiting `base * factor**n` seconds (capped).

    Each wait is spread by +/- `jitter` (a fraction) so that a burst of failures does not come
    back as a burst. rq takes a fixed list of intervals; `intervals()` computes it.
    """

    max_retries: int = 3
    base: float = 10.0
    factor: float = 6.0
    cap: float = 300.0
    jitter: float = 0.1

    def intervals(self, rng: random.Random | None = None) -> list[float]:
        """The waits before retry 1, 2, ... `max_retries`, in seconds, each with its jitter."""
        draw = (rng or random).random
        spread = self.jitter
        return [round(max(0.0, wait * (1 + spread * (2 * draw() - 1))), 3) for wait in _waits(self)]


@functools.cache
def _waits(policy: RetryPolicy) -> tuple[float, ...]:
    """The waits without jitter; computed once per policy (it runs on every enqueue)."""
    return tuple(min(policy.cap, policy.base * policy.factor**n) for n in range(policy.max_retries))


@dataclass(frozen=True)
class Progress:
    """What a running job last reported through `report_progress`."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


class JobRequest(NamedTuple):
    """One job to enqueue: what `enqueue()` takes, as a value (used by `enqueue_many`)."""

    job_name: str
    params: Mapping[str, Any] = MappingProxyType({})
    priority: Priority = "default"
    delay: timedelta | float | None = None
    at: datetime | None = None
    retry: int | RetryPolicy | None = None
    timeout: float | None = None
    result_ttl: int | None = None
    failure_ttl: int | None = None
    ttl: int | None = None
    job_id: str | None = None
    depends_on: str | Sequence[str] | None = None
    meta: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class JobView:
    """A snapshot of one job, as `get()` reads it. Never rq's `Job`."""

    id: str
    job_name: str
    status: JobStatus
    queue: str
    params: Mapping[str, Any]
    attempts: int
    max_attempts: int
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    result: Any = None
    error: str | None = None
    progress: Progress | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    worker: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status.is_final


class JobQueue(Protocol):
    """Enqueue work now, run it in a worker, look at it later. The application's only dependency."""

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
        """Enqueue one job and return its id (an existing job's id for a live idempotency key)."""
        ...

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[str]:
        """Enqueue a batch, all or nothing; ids in the order of `requests`."""
        ...

    def get(self, job_id: str) -> JobView:
        """The job's current view. Raises `JobNotFoundError`."""
        ...

    def wait(self, job_id: str, timeout: float) -> JobView:
        """Block until the job is final; raises `WaitTimeoutError` after `timeout` seconds."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel a queued, scheduled or deferred job. Raises `JobStateError` otherwise."""
        ...

    def stop(self, job_id: str) -> None:
        """Stop a running job: it ends `stopped` and is not retried. Raises `JobStateError` otherwise."""
        ...
