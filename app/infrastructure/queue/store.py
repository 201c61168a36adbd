"""The consumer's port, `JobStore`, and its Redis adapter: claim, finish, fail, heartbeat.

The worker speaks only to `JobStore`: what it gets back are our types (`Claim`, `ClaimReply`)
and, when Redis fails, our errors (`QueueUnavailableError` for an outage, ...), never redis-py's.
Each call is one script, so a busy worker pays one round trip per job: recording a success and
claiming the next job are one call. The worker's counters are added up locally and written with
the heartbeats.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from app.infrastructure.queue import keys, lua
from app.infrastructure.queue.record import JobRecord, encode_error, rq_time, text
from app.infrastructure.queue.schema import Ending, WorkerField, packer
from app.infrastructure.redis.connection import describe, translating
from app.infrastructure.redis.script import FastScript

log = logging.getLogger("taskq.worker")

#: Due scheduled jobs are promoted at most this often while the worker is busy (and on every
#: claim when it is idle), so a drain does not pay three ZRANGEBYSCOREs per job.
PROMOTE_EVERY = 0.1

#: What `report_progress(done, total, message)` calls in a running job (see `progress.py`).
ProgressSink = Callable[[int, int, str], None]

_claim_args = packer("dequeue")
_finish_args = packer("finish")
_fail_args = packer("fail")


@dataclass(frozen=True)
class Claim:
    """A job handed to this worker, registered as started under `execution_id`."""

    queue: str
    job_id: str
    execution_id: str
    attempt: int
    record: JobRecord
    started: float


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
    def next_due(self) -> float | None:
        return float(self.reply[1]) if self.reply[0] == b"" and self.reply[1] else None

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
    """Where a worker takes jobs and records how they went. Raises only `QueueError`s."""

    def claim(self, execution_id: str) -> ClaimReply:
        """Claim the next job under `execution_id` (chosen by the caller, to recover a lost reply)."""
        ...

    def wait_and_claim(self, timeout: float, execution_id: str) -> ClaimReply | None:
        """Wait up to `timeout` s for a job to be pushed, then claim; None: ask again with `claim`."""
        ...

    def finish(self, claim: Claim, return_blob: str, next_execution_id: str | None) -> ClaimReply | None:
        """Record a success; with `next_execution_id`, claim the next job in the same call."""
        ...

    def fail(self, claim: Claim, ending: Ending, retry_at: float | None, error: str) -> None:
        """Record an attempt that did not finish: retry (at `retry_at`), requeue, failed or stopped."""
        ...

    def heartbeat(self, claim: Claim | None) -> None:
        """Extend the running job's deadline (if any) and the worker's; write the counters."""
        ...

    def recover(self, execution_id: str) -> list[str]:
        """After a claim whose reply was lost, put back the job it may have claimed; their ids."""
        ...

    def flush_counts(self) -> None:
        """Write the counters added up since the last heartbeat."""
        ...


class RedisJobStore:
    """`JobStore` on Redis, for one worker (its name, hash key and queues)."""

    def __init__(
        self, connection: redis.Redis, name: str, queues: Sequence[str], heartbeat_ttl: int, worker_ttl: int
    ) -> None:
        self.connection = connection
        self.where = describe(connection)
        self.key, self.name, self.queues = keys.key("worker", name), name, list(queues)
        self.heartbeat_ttl, self.worker_ttl = heartbeat_ttl, worker_ttl
        self._wake_keys = [keys.wake(queue) for queue in self.queues]
        self._dequeue = FastScript(connection, lua.source("dequeue"))
        self._finish = FastScript(connection, lua.source("finish"))
        self._fail = FastScript(connection, lua.source("fail"))
        self._promoted = 0.0
        self.suspended = False
        self.counts = {WorkerField.SUCCESSFUL: 0, WorkerField.FAILED: 0}
        self.worked = 0.0
        self._counts_lock = threading.Lock()  # counted by the loop, written by the heartbeat thread

    def _reply(self, reply: list[Any], execution_id: str, now: float) -> ClaimReply:
        """The claim's reply; a change of rq's suspension (`rq suspend`, `rq resume`) is logged once."""
        claimed = ClaimReply(reply, execution_id, now)
        if claimed.suspended != self.suspended:
            self.suspended = claimed.suspended
            if claimed.suspended:
                log.warning("queues suspended (rq suspend): taking no jobs until `rq resume`")
            else:
                log.info("queues resumed (rq resume): taking jobs again")
        return claimed

    def _promote(self, now: float) -> str:
        if now - self._promoted < PROMOTE_EVERY:
            return "0"
        self._promoted = now
        return "1"

    def _claim(self, now: float, now_iso: str, execution_id: str) -> list[list[Any]]:
        return _claim_args(
            worker_key=self.key,
            now=repr(now) if now_iso else "",  # '': the server's clock, as now_iso
            now_iso=now_iso,
            worker=self.name,
            exec_id=execution_id,
            heartbeat_ttl=self.heartbeat_ttl,
            worker_ttl=self.worker_ttl,
            promote=self._promote(now),
            queues=self.queues,
        )

    def claim(self, execution_id: str) -> ClaimReply:
        now = time.time()
        self._promoted = 0.0  # a claim outside the busy path always promotes: nothing due is missed
        script_keys, args = self._claim(now, rq_time(now), execution_id)
        with translating(self.where):
            reply = self._dequeue(keys=script_keys, args=args)
        return self._reply(reply, execution_id, now)

    def wait_and_claim(self, timeout: float, execution_id: str) -> ClaimReply | None:
        """Block on the wake-up lists and claim in the same round trip.

        Both go in one pipeline: Redis holds the claim behind the blocking pop and runs it the
        moment the pop returns, so a job enqueued to an idle worker costs no extra round trip to
        claim. The claim reads the server's clock (the client's would be up to `timeout` old).
        None if the server has forgotten the claim script (the next `claim()` loads it).
        """
        script_keys, args = self._claim(time.time(), "", execution_id)
        with translating(self.where), self.connection.pipeline(transaction=False) as pipe:
            pipe.blpop(self._wake_keys, timeout=timeout)
            pipe.execute_command("EVALSHA", self._dequeue.script.sha, len(script_keys), *script_keys, *args)
            popped, reply = pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError):
                return None
            for result in (reply, popped):
                if isinstance(result, Exception):
                    raise result
        return self._reply(reply, execution_id, time.time())

    def finish(self, claim: Claim, return_blob: str, next_execution_id: str | None) -> ClaimReply | None:
        now = time.time()
        claim_next = next_execution_id is not None
        script_keys, args = _finish_args(
            **self._attempt(claim, now),
            return_value=return_blob,
            result_ttl=claim.record.result_ttl,
            has_dependencies="1" if claim.record.has_dependencies else "0",
            claim_next="1" if claim_next else "0",
            next_exec_id=next_execution_id or "",
            heartbeat_ttl=self.heartbeat_ttl,
            worker_ttl=self.worker_ttl,
            promote=self._promote(now) if claim_next else "0",
            queues=self.queues if claim_next else (),
        )
        with translating(self.where):
            reply = self._finish(keys=script_keys, args=args)
        self._count(WorkerField.SUCCESSFUL, claim, now)
        return self._reply(reply[1:], next_execution_id, now) if next_execution_id is not None else None

    def fail(self, claim: Claim, ending: Ending, retry_at: float | None, error: str) -> None:
        now = time.time()
        packed, b64 = encode_error(error)
        script_keys, args = _fail_args(
            **self._attempt(claim, now),
            ending=ending.value,
            retry_at="" if retry_at is None else repr(retry_at),
            error=packed,
            error_b64=b64,
        )
        with translating(self.where):
            self._fail(keys=script_keys, args=args)
        if ending is not Ending.REQUEUE:
            self._count(WorkerField.FAILED, claim, now)

    def _attempt(self, claim: Claim, now: float) -> dict[str, Any]:
        """What every outcome script is told about the attempt (schema.ATTEMPT_ARGS), and our key."""
        return {
            "worker_key": self.key,
            "job_id": claim.job_id,
            "queue": claim.queue,
            "exec_id": claim.execution_id,
            "now": repr(now),
            "now_iso": rq_time(now),
            "worker": self.name,
        }

    def heartbeat(self, claim: Claim | None) -> None:
        now = time.time()
        with translating(self.where), self.connection.pipeline(transaction=False) as pipe:
            if claim is not None:
                entry = f"{claim.job_id}:{claim.execution_id}"
                # Minus the deadline: see schema.KEYS["started"].
                pipe.zadd(keys.started(claim.queue), {entry: -(now + self.heartbeat_ttl)}, xx=True)
                pipe.hset(self.key, WorkerField.WORKING_TIME, now - claim.started)
            pipe.hset(self.key, WorkerField.LAST_HEARTBEAT, rq_time(now))
            pipe.expire(self.key, self.worker_ttl)
            self._flush_counts(pipe)
            pipe.execute()

    def recover(self, execution_id: str) -> list[str]:
        requeued = []
        for queue in self.queues:
            with translating(self.where):
                entries = self.connection.zscan(
                    keys.started(queue), 0, match=f"*:{execution_id}", count=1000
                )[1]
            for entry, _score in entries:
                job_id = text(entry).partition(":")[0]
                lost = Claim(queue, job_id, execution_id, 0, JobRecord(job_id, {}), time.time())
                self.fail(
                    lost, Ending.REQUEUE, None, "Worker lost its connection while claiming this job; put back"
                )
                requeued.append(job_id)
        return requeued

    def flush_counts(self) -> None:
        with translating(self.where), self.connection.pipeline(transaction=False) as pipe:
            self._flush_counts(pipe)
            pipe.execute()

    def _count(self, name: str, claim: Claim, now: float) -> None:
        with self._counts_lock:
            self.counts[name] += 1
            self.worked += max(0.0, now - claim.started)

    def _flush_counts(self, pipe: Any) -> None:
        with self._counts_lock:
            counts, worked = dict(self.counts), self.worked
            self.counts = dict.fromkeys(self.counts, 0)
            self.worked = 0.0
        for name, count in counts.items():
            if count:
                pipe.hincrby(self.key, name, count)
        if worked:
            pipe.hincrbyfloat(self.key, WorkerField.TOTAL_WORKING_TIME, worked)


def new_execution_id() -> str:
    return os.urandom(8).hex()
