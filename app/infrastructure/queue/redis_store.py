"""`RedisJobStore`: the worker's `JobStore` port (store.py) on Redis, one script per transition.

A busy worker pays one round trip per job: recording a success and claiming the next job are
one call. Every script reads the time from Redis; the worker's counters are added up locally and
written with the heartbeats. Errors leave as ours (`translating`), never redis-py's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from app.infrastructure.queue import keys, lua
from app.infrastructure.queue.record import JobRecord, encode_error, text
from app.infrastructure.queue.schema import Ending, WorkerField, packer
from app.infrastructure.queue.store import Beat, Claim, ClaimReply, Recorded
from app.infrastructure.redis.connection import describe, translating
from app.infrastructure.redis.script import FastScript

#: Due scheduled jobs are promoted at most this often while the worker is busy (and on every
#: claim when it is idle), so a drain does not pay three ZRANGEBYSCOREs per job.
PROMOTE_EVERY = 0.1
log = logging.getLogger("taskq.worker")

_claim_args = packer("dequeue")
_finish_args = packer("finish")
_fail_args = packer("fail")
_heartbeat_args = packer("heartbeat")
_handback_args = packer("handback")


class RedisJobStore:
    """`JobStore` on Redis, for one worker (its name, hash key and queues)."""

    def __init__(
        self,
        connection: redis.Redis,
        name: str,
        queues: Sequence[str],
        heartbeat_ttl: int,
        worker_ttl: int,
        limits: str = "",
        max_failed: int = 0,
    ) -> None:
        """`limits`: the claim script's limits argument (`limits.script_argument`), '' for none;
        `max_failed`: the most jobs a queue's failed registry keeps (QUEUE_MAX_FAILED; 0: no bound)."""
        self.connection = connection
        self.max_failed = max_failed
        self.where = describe(connection)
        self.key, self.name, self.queues = keys.key("worker", name), name, list(queues)
        self.heartbeat_ttl, self.worker_ttl = heartbeat_ttl, worker_ttl
        self.limits = limits
        self._wake_keys = [keys.wake(queue) for queue in self.queues]
        self._dequeue = FastScript(connection, lua.source("dequeue"))
        self._finish = FastScript(connection, lua.source("finish"))
        self._fail = FastScript(connection, lua.source("fail"))
        self._handback = FastScript(connection, lua.source("handback"))
        self._heartbeat = FastScript(connection, lua.source("heartbeat"))
        self._promoted = 0.0
        self.suspended = False
        self.counts = {WorkerField.SUCCESSFUL: 0, WorkerField.FAILED: 0}
        self.worked = 0.0
        self._counts_lock = threading.Lock()  # counted by the loop, written by the heartbeat thread

    def _promote(self) -> str:
        # The worker's clock decides only how often; what is due is Redis's to say.
        now = time.monotonic()
        if now - self._promoted < PROMOTE_EVERY:
            return "0"
        self._promoted = now
        return "1"

    def _reply(self, reply: list[Any], execution_id: str) -> ClaimReply:
        """The claim's reply; a change of rq's suspension (`rq suspend`, `rq resume`) is logged once."""
        claimed = ClaimReply(reply, execution_id, time.time())
        if claimed.suspended != self.suspended:
            self.suspended = claimed.suspended
            if claimed.suspended:
                log.warning("queues suspended (rq suspend): taking no jobs until `rq resume`")
            else:
                log.info("queues resumed (rq resume): taking jobs again")
        return claimed

    def _claim(self, execution_id: str) -> list[list[Any]]:
        return _claim_args(
            worker_key=self.key,
            worker=self.name,
            exec_id=execution_id,
            heartbeat_ttl=self.heartbeat_ttl,
            worker_ttl=self.worker_ttl,
            promote=self._promote(),
            limits=self.limits,
            queues=self.queues,
        )

    def claim(self, execution_id: str) -> ClaimReply:
        self._promoted = 0.0  # a claim outside the busy path always promotes: nothing due is missed
        script_keys, args = self._claim(execution_id)
        with translating(self.where):
            reply = self._dequeue(keys=script_keys, args=args)
        return self._reply(reply, execution_id)

    def wait_and_claim(self, timeout: float, execution_id: str) -> ClaimReply | None:
        """Block on the wake-up lists and claim in the same round trip.

        Both go in one pipeline: Redis holds the claim behind the blocking pop and runs it the
        moment the pop returns, so a job enqueued to an idle worker costs no extra round trip to
        claim. None if the server has forgotten the claim script (the next `claim()` loads it).
        """
        script_keys, args = self._claim(execution_id)
        with translating(self.where), self.connection.pipeline(transaction=False) as pipe:
            pipe.blpop(self._wake_keys, timeout=timeout)
            pipe.execute_command("EVALSHA", self._dequeue.script.sha, len(script_keys), *script_keys, *args)
            popped, reply = pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError):
                return None
            for result in (reply, popped):
                if isinstance(result, Exception):
                    raise result
        return self._reply(reply, execution_id)

    def finish(
        self, claim: Claim, return_blob: str, next_execution_id: str | None
    ) -> tuple[Recorded, ClaimReply | None]:
        claim_next = next_execution_id is not None
        script_keys, args = _finish_args(
            **self._attempt(claim),
            return_value=return_blob,
            result_ttl=claim.record.result_ttl,
            has_dependencies="1" if claim.record.has_dependencies else "0",
            claim_next="1" if claim_next else "0",
            next_exec_id=next_execution_id or "",
            heartbeat_ttl=self.heartbeat_ttl,
            worker_ttl=self.worker_ttl,
            promote=self._promote() if claim_next else "0",
            limits=self.limits if claim_next else "",
            queues=self.queues if claim_next else (),
        )
        with translating(self.where):
            reply = self._finish(keys=script_keys, args=args)
        done = Recorded(int(reply[0]))
        if done is Recorded.DONE:
            self._count(WorkerField.SUCCESSFUL, claim)
        following = self._reply(reply[1:], next_execution_id) if next_execution_id else None
        return done, following

    def fail(self, claim: Claim, ending: Ending, retry_in: float | None, error: str) -> Recorded:
        if ending is Ending.HANDBACK:
            script_keys, args = _handback_args(
                **self._attempt(claim), retry_in=repr(retry_in or 0.0), reason=error
            )
            with translating(self.where):
                return Recorded(int(self._handback(keys=script_keys, args=args)[0]))
        packed, b64 = encode_error(error)
        script_keys, args = _fail_args(
            **self._attempt(claim),
            ending=ending.value,
            retry_in="" if retry_in is None else repr(retry_in),
            error=packed,
            error_b64=b64,
            max_failed=self.max_failed,
        )
        with translating(self.where):
            done = Recorded(int(self._fail(keys=script_keys, args=args)[0]))
        if done is Recorded.DONE and ending is not Ending.REQUEUE:
            self._count(WorkerField.FAILED, claim)
        return done

    def _attempt(self, claim: Claim) -> dict[str, Any]:
        """What every outcome script is told about the attempt (schema.ATTEMPT_ARGS), and our key."""
        return {
            "worker_key": self.key,
            "job_id": claim.job_id,
            "queue": claim.queue,
            "exec_id": claim.execution_id,
            "worker": self.name,
        }

    def heartbeat(self, claim: Claim | None) -> Beat:
        with self._counts_lock:
            counts, worked = dict(self.counts), self.worked
            self.counts = dict.fromkeys(self.counts, 0)
            self.worked = 0.0
        tail = [value for name, count in counts.items() if count for value in (name, count)]
        if worked:
            tail += [WorkerField.TOTAL_WORKING_TIME, repr(worked)]
        script_keys, args = _heartbeat_args(
            worker_key=self.key,
            job_id=claim.job_id if claim else "",
            queue=claim.queue if claim else "",
            exec_id=claim.execution_id if claim else "",
            heartbeat_ttl=self.heartbeat_ttl,
            worker_ttl=self.worker_ttl,
            working_time=repr(time.time() - claim.started) if claim else "",
            counts=tail,
        )
        with translating(self.where):
            mine, registered = self._heartbeat(keys=script_keys, args=args)
        if not registered:
            self._return(counts, worked)  # written by the next heartbeat, once registered again
        return Beat(None if mine == b"" else mine == 1, bool(registered))

    def recover(self, execution_id: str) -> list[str]:
        requeued = []
        for queue in self.queues:
            with translating(self.where):
                found = self.connection.zscan(keys.started(queue), 0, match=f"*:{execution_id}", count=1000)
            for entry, _score in found[1]:
                job_id = text(entry).rpartition(":")[0]  # the execution id has no colon
                lost = Claim(queue, job_id, execution_id, 0, JobRecord(job_id, {}), time.time())
                reason = "Worker lost its connection while claiming this job; put back"
                if self.fail(lost, Ending.REQUEUE, None, reason) is Recorded.DONE:
                    requeued.append(job_id)
        return requeued

    def flush_counts(self) -> None:
        self.heartbeat(None)

    def _count(self, name: str, claim: Claim) -> None:
        with self._counts_lock:
            self.counts[name] += 1
            self.worked += max(0.0, time.time() - claim.started)

    def _return(self, counts: dict[str, int], worked: float) -> None:
        with self._counts_lock:
            for name, count in counts.items():
                self.counts[name] += count
            self.worked += worked
