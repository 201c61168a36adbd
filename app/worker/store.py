"""The Redis side of a worker: claim, finish, fail, heartbeat, counters. Scripts, not round trips.

A busy worker pays one round trip per job: recording a success and claiming the next job are
one script call. rq's bookkeeping (started registry, worker hash, results, registries) is kept
in rq's format; the worker's counters are added up locally and written with the heartbeats.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from app.infrastructure.queue import keys, scripts
from app.infrastructure.queue.record import JobRecord, encode_error, rq_time, text
from app.infrastructure.redis.script import FastScript
from app.worker.execution import Claim

#: Due scheduled jobs are promoted at most this often while the worker is busy (and on every
#: claim when it is idle), so a drain does not pay three ZRANGEBYSCOREs per job.
PROMOTE_EVERY = 0.1

Reply = list[Any]


class ClaimReply:
    """What a claim returned: a job, nothing (with the next due time), or 'suspended'."""

    def __init__(self, reply: Reply, execution_id: str, now: float) -> None:
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
        record = JobRecord.from_hash(job_id, fields)
        return Claim(text(reply[0]), job_id, self.execution_id, int(reply[2]), record, self.now)


class WorkerStore:
    """Runs the worker's scripts against Redis for one worker (its hash key, name, queues)."""

    def __init__(
        self,
        connection: redis.Redis,
        key: str,
        name: str,
        queues: Sequence[str],
        heartbeat_ttl: int,
        worker_ttl: int,
    ) -> None:
        self.connection = connection
        self.key, self.name, self.queues = key, name, list(queues)
        self.heartbeat_ttl, self.worker_ttl = heartbeat_ttl, worker_ttl
        self._dequeue = FastScript(connection, scripts.source("dequeue"))
        self._finish = FastScript(connection, scripts.source("finish"))
        self._fail = FastScript(connection, scripts.source("fail"))
        self._promoted = 0.0
        self.counts = {"successful_job_count": 0, "failed_job_count": 0}
        self.worked = 0.0
        self._counts_lock = threading.Lock()  # counted by the loop, written by the heartbeat thread

    def claim_args(self, now: float, execution_id: str) -> list[Any]:
        promote = now - self._promoted >= PROMOTE_EVERY
        if promote:
            self._promoted = now
        return [
            repr(now),
            rq_time(now),
            self.name,
            execution_id,
            self.heartbeat_ttl,
            self.worker_ttl,
            "1" if promote else "0",
            len(self.queues),
            *self.queues,
        ]

    def claim(self, execution_id: str) -> ClaimReply:
        """Claim the next job under `execution_id`. Raises redis errors (the caller decides how to wait).

        The caller chooses the id, so that after a lost reply it can find what was claimed.
        """
        now = time.time()
        self._promoted = 0.0  # a claim outside the busy path always promotes: nothing due is missed
        reply = self._dequeue(keys=[self.key], args=self.claim_args(now, execution_id))
        return ClaimReply(reply, execution_id, now)

    def wait_and_claim(
        self, wake_keys: Sequence[str], timeout: float, execution_id: str
    ) -> ClaimReply | None:
        """Block on the wake-up lists for up to `timeout` s, and claim in the same round trip.

        Both go in one pipeline: Redis holds the claim behind the blocking pop and runs it the
        moment the pop returns, so a job enqueued to an idle worker costs no extra round trip to
        claim. The claim then reads the server's clock (the client's would be up to `timeout`
        old). None if the server has forgotten the claim script (the next `claim()` loads it).
        Raises redis errors, as `claim` does.
        """
        args = self.claim_args(time.time(), execution_id)
        args[0] = args[1] = ""
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.blpop(list(wake_keys), timeout=timeout)
            pipe.execute_command("EVALSHA", self._dequeue.script.sha, 1, self.key, *args)
            popped, reply = pipe.execute(raise_on_error=False)
        if isinstance(reply, redis.exceptions.NoScriptError):
            return None
        for result in (reply, popped):
            if isinstance(result, Exception):
                raise result
        return ClaimReply(reply, execution_id, time.time())

    def finish(self, claim: Claim, return_blob: str, next_execution_id: str | None) -> ClaimReply | None:
        """Record a success; with `next_execution_id`, claim the next job in the same call."""
        now = time.time()
        stamp = rq_time(now)
        args: list[Any] = [claim.job_id, claim.queue, claim.execution_id, repr(now), stamp, self.name]
        args += [return_blob, claim.record.result_ttl]
        args += ["0" if next_execution_id is None else "1", "1" if claim.record.has_dependencies else "0"]
        if next_execution_id is not None:
            args += self.claim_args(now, next_execution_id)
        reply = self._finish(keys=[self.key], args=args)
        self._count("successful_job_count", claim, now)
        return None if next_execution_id is None else ClaimReply(reply[1:], next_execution_id, now)

    def fail(self, claim: Claim, kind: str, retry_at: str, error: str) -> None:
        """Record a failed attempt: kind is 'retry', 'requeue', 'failed' or 'stopped'."""
        now = time.time()
        packed, b64 = encode_error(error)
        self._fail(
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
            ],
        )
        if kind != "requeue":
            self._count("failed_job_count", claim, now)

    def heartbeat(self, claim: Claim | None) -> None:
        """Extend the running job's deadline (if any) and the worker's; write the counters."""
        now = time.time()
        with self.connection.pipeline(transaction=False) as pipe:
            if claim is not None:
                entry = f"{claim.job_id}:{claim.execution_id}"
                pipe.zadd(keys.started(claim.queue), {entry: now + self.heartbeat_ttl}, xx=True)
                pipe.hset(self.key, "current_job_working_time", now - claim.started)
            pipe.hset(self.key, "last_heartbeat", rq_time(now))
            pipe.expire(self.key, self.worker_ttl)
            self._flush_counts(pipe)
            pipe.execute()

    def recover(self, execution_id: str) -> list[str]:
        """After a claim whose reply was lost, put back the job it may have claimed."""
        requeued = []
        for queue in self.queues:
            entries = self.connection.zscan(keys.started(queue), 0, match=f"*:{execution_id}", count=1000)[1]
            for entry, _score in entries:
                job_id = text(entry).partition(":")[0]
                lost = Claim(queue, job_id, execution_id, 0, JobRecord.from_hash(job_id, {}), time.time())
                self.fail(lost, "requeue", "", "Worker lost its connection while claiming this job; put back")
                requeued.append(job_id)
        return requeued

    def flush_counts(self) -> None:
        with self.connection.pipeline(transaction=False) as pipe:
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
            pipe.hincrbyfloat(self.key, "total_working_time", worked)


def new_execution_id() -> str:
    return os.urandom(8).hex()
