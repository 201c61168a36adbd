"""What job code may use while it runs: its context, `report_progress`, and `PermanentError`.

The worker and `InMemoryQueue` both set the context, so a job behaves the same under either.
Called outside a job (a plain function call in a test), `report_progress` does nothing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.config import Settings
from app.infrastructure.queue.schema import MAX_SECONDS
from app.infrastructure.queue.store import ProgressSink


class PermanentError(Exception):
    """Raise this (or `raise PermanentError(...) from exc`) in a job to fail it now: no retries.

    For errors that another attempt cannot fix: bad input, a missing document.
    """


class RateLimited(Exception):  # noqa: N818 - named for what the job says, as BullMQ's RateLimitError
    """Raise this in a job (say on HTTP 429) to run it again `retry_after` seconds later.

    The job goes back `scheduled`, without using an attempt or a retry; at most ten years.
    """

    def __init__(self, retry_after: float, message: str = "") -> None:
        if not isinstance(retry_after, int | float) or isinstance(retry_after, bool) or not retry_after >= 0:
            raise ValueError(f"RateLimited takes a number of seconds >= 0, not {retry_after!r}")
        self.retry_after = min(float(retry_after), float(MAX_SECONDS))
        super().__init__(message or f"rate limited: run again in {self.retry_after:g} s")


@dataclass(frozen=True)
class JobContext:
    """The job being run: who it is, and where its progress goes."""

    job_id: str
    job_name: str
    queue: str
    attempt: int
    settings: Settings
    sink: ProgressSink


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar("taskq_job", default=None)


def current_job() -> JobContext | None:
    """The context of the job running in this process, or None outside a job."""
    return _current.get()


def settings() -> Settings:
    """The settings of the running worker; outside a job, the environment's (`app.bootstrap`)."""
    context = _current.get()
    if context is not None:
        return context.settings
    from app.bootstrap import default_settings  # only outside a job: a plain call in a test

    return default_settings()


def report_progress(done: int, total: int, message: str = "") -> None:
    """Record that `done` of `total` steps are done; `get()` and `taskq status --watch` show it.

    Writes only the `progress` entry of the job's meta; everything else in meta is kept.

    Raises:
        ValueError: `done` or `total` is negative, or `done` is more than `total`.
    """
    if (
        isinstance(done, bool)
        or isinstance(total, bool)
        or not isinstance(done, int)
        or not isinstance(total, int)
    ):
        raise ValueError(f"report_progress takes whole numbers, got done={done!r}, total={total!r}")
    if done < 0 or total < 0 or done > total:
        raise ValueError(f"report_progress needs 0 <= done <= total, got done={done}, total={total}")
    context = _current.get()
    if context is not None:
        context.sink(done, total, str(message)[:500])


@contextmanager
def running(context: JobContext) -> Iterator[JobContext]:
    """Make `context` the current job for the duration of the block (used by the runners)."""
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
