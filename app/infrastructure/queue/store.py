"""The consumer's port, `JobStore`, and the types it speaks: claim, finish, fail, heartbeat.

The worker speaks only to `JobStore`: what it gets back are our types (`Claim`, `ClaimReply`,
`Recorded`, `Beat`) and, when Redis fails, our errors (`QueueUnavailableError` for an outage,
...), never redis-py's. `RedisJobStore` (redis_store.py) is the adapter; `MemoryStore` the fake.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from app.infrastructure.queue.record import JobRecord, text
from app.infrastructure.queue.schema import Ending

#: What `report_progress(done, total, message)` calls in a running job (see `progress.py`).
ProgressSink = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Claim:
    """A job handed to this worker, registered as started under `execution_id`."""

    queue: str
    job_id: str
    execution_id: str
    attempt: int
    record: JobRecord
    started: float


class Recorded(IntEnum):
    """What an outcome script did: recorded it, found it recorded (a repeated call), or refused it
    because the execution is no longer the job's (the reaper gave the job to another worker)."""

    STALE = -1
    ALREADY = 0
    DONE = 1


@dataclass(frozen=True)
class Beat:
    """What a heartbeat found: whether the running job is still this execution's (None: no job),
    and whether the worker's hash was there (not after Redis restarted without persistence)."""

    job_ours: bool | None
    registered: bool


class ClaimReply:
    """What a claim returned: a job, nothing (with the next due time), or 'suspended'."""

    def __init__(self, reply: list[Any], execution_id: str, now: float) -> None:
        self.reply = reply
        self.execution_id = execution_id
        self.now = now

    @property
    def suspended(self) -> bool:
        return bool(self.reply[0] == b"suspended")

    @property
    def next_due_in(self) -> float | None:
        """Seconds until the next scheduled job is due, by Redis's clock (None: none is)."""
        return float(self.reply[1]) if self.reply[0] == b"" and self.reply[1] else None

    @property
    def skipped(self) -> list[str]:
        """Queues the claim skipped because one of their keys has the wrong type."""
        return [text(name) for name in self.reply[2:]] if self.reply[0] == b"" else []

    def claim(self) -> Claim | None:
        reply = self.reply
        if reply[0] in (b"", b"suspended"):
            return None
        job_id = text(reply[1])
        fields = dict(zip(reply[3::2], reply[4::2], strict=True))
        return Claim(
            text(reply[0]), job_id, self.execution_id, int(reply[2]), JobRecord(job_id, fields), self.now
        )


class JobStore(Protocol):
    """Where a worker takes jobs and records how they went. Raises only `QueueError`s.

    Every write for a job is fenced by the claim's execution id: a worker that lost its job to the
    reaper (frozen, cut off) cannot overwrite the newer run's state.
    """

    def claim(self, execution_id: str) -> ClaimReply:
        """Claim the next job under `execution_id` (chosen by the caller, to recover a lost reply)."""
        ...

    def wait_and_claim(self, timeout: float, execution_id: str) -> ClaimReply | None:
        """Wait up to `timeout` s for a job to be pushed, then claim; None: ask again with `claim`."""
        ...

    def finish(
        self, claim: Claim, return_blob: str, next_execution_id: str | None
    ) -> tuple[Recorded, ClaimReply | None]:
        """Record a success; with `next_execution_id`, claim the next job in the same call."""
        ...

    def fail(self, claim: Claim, ending: Ending, retry_in: float | None, error: str) -> Recorded:
        """Record an attempt that did not finish: retry (`retry_in` s from now), requeue, failed, stopped."""
        ...

    def heartbeat(self, claim: Claim | None) -> Beat:
        """Extend the running job's deadline (if still its) and the worker's; write the counters."""
        ...

    def recover(self, execution_id: str) -> list[str]:
        """After a claim whose reply was lost, put back the job it may have claimed; their ids."""
        ...

    def flush_counts(self) -> None:
        """Write the counters added up since the last heartbeat."""
        ...


def new_execution_id() -> str:
    return os.urandom(8).hex()
