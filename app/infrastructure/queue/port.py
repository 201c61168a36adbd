"""The port the application depends on (`JobQueue`) and the small frozen types it speaks.

`RQQueue` (Redis) and `InMemoryQueue` (tests) implement it; a contract suite runs the same
cases against both. Nothing here imports rq or redis.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

from app.infrastructure.queue.schema import MAX_SECONDS, JobStatus

if TYPE_CHECKING:
    from typing import Unpack

__all__ = [
    "MAX_SECONDS",
    "EnqueueOptions",
    "JobQueue",
    "JobRequest",
    "JobStatus",
    "JobView",
    "Priority",
    "Progress",
    "RetryPolicy",
]

Priority = Literal["high", "default", "low"]
NO_PARAMS: Mapping[str, Any] = MappingProxyType({})


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
        return jittered(self._waits, self.jitter, (rng or random).random)

    @functools.cached_property
    def _waits(self) -> tuple[float, ...]:
        """The waits without jitter, computed once per policy (intervals() runs on every enqueue)."""
        return tuple(min(self.cap, self.base * self.factor**n) for n in range(self.max_retries))


def jittered(waits: Sequence[float], spread: float, draw: Callable[[], float]) -> list[float]:
    """Each wait spread by +/- `spread` (a fraction, at most 1), to the millisecond.

    It runs on every enqueue, so it is written for speed: no `round` (half a microsecond each).
    """
    spread = min(spread, 1.0)  # a wait never turns negative
    return [int(wait * (1000 + spread * (2000 * draw() - 1000)) + 0.5) / 1000 for wait in waits]


@dataclass(frozen=True)
class Progress:
    """What a running job last reported through `report_progress`."""

    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


class EnqueueOptions(TypedDict, total=False):
    """The options of one enqueue: every one keyword-only, never mixed with the job's params.

    The one list of them: `enqueue(..., **options)` and `JobRequest(..., **options)` take these
    names, and anything else is refused (`InvalidOptionError`). Defaults: the queue README.
    """

    priority: Priority
    delay: timedelta | float | None
    at: datetime | None
    retry: int | RetryPolicy | None
    timeout: float | None
    result_ttl: int | None
    failure_ttl: int | None
    ttl: int | None
    job_id: str | None
    depends_on: str | Sequence[str] | None
    meta: Mapping[str, Any] | None
    limit_key: str | None
    require_worker: bool


OPTION_NAMES = frozenset(EnqueueOptions.__optional_keys__)


@dataclass(frozen=True, init=False)
class JobRequest:
    """One job to enqueue, as a value (for `enqueue_many`): `JobRequest(name, params, priority=...)`."""

    job_name: str
    params: Mapping[str, Any]
    options: Mapping[str, Any]

    def __init__(
        self, job_name: str, params: Mapping[str, Any] = NO_PARAMS, **options: Unpack[EnqueueOptions]
    ) -> None:
        object.__setattr__(self, "job_name", job_name)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "options", MappingProxyType(options))


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
        self, job_name: str, params: Mapping[str, Any] = NO_PARAMS, **options: Unpack[EnqueueOptions]
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
