"""Periodic upkeep a worker does for its queues: take back abandoned jobs, expire registries.

One worker per queue does it per interval (a Redis lock). A job whose worker died (SIGKILL,
OOM, lost host) is back at the front of its queue within heartbeat TTL + interval (about
35 s by default), or failed with its reason when it has no retries left: never stuck.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
from rq import Queue, worker_registration

from app.infrastructure.queue import keys, lua
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.record import encode_error, text
from app.infrastructure.queue.schema import KEYS, Field, JobStatus, packer
from app.infrastructure.redis.connection import describe, server_time, translating

log = logging.getLogger("taskq.worker")

ABANDONED = (
    "AbandonedJobError: the worker running this job stopped sending heartbeats "
    "(it was killed, ran out of memory, or lost its host); taken back by the reaper"
)
STUCK_AFTER = 60.0
REAP_LIMIT = 1000
SETTLE_LIMIT = 1000
#: Workflow members the sweep looks at per pass (a few ms): it settles what nothing else told.
SWEEP_LIMIT = 2000
_reap_args = packer("reap")
_settle_args = packer("settle")
_sweep_args = packer("wf_sweep")


@dataclass(frozen=True)
class Reaped:
    """What one queue's upkeep did: jobs of dead workers requeued or failed, and deferred jobs
    settled whose dependency ended outside taskq's worker (canceled, or released to the queue)."""

    queue: str
    requeued: list[str]
    failed: list[str]
    canceled: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


class Reaper:
    """Runs the reaper and registry cleanup for a set of queues, at most once per interval each."""

    def __init__(
        self, connection: redis.Redis, queues: Sequence[str], interval: float, owner: str, max_failed: int = 0
    ) -> None:
        self.connection = connection
        self.max_failed = max_failed  # QUEUE_MAX_FAILED: what a failed registry keeps (0: no bound)
        self.where = describe(connection)
        self.queues = tuple(queues)
        self.interval = interval
        self.owner = owner
        self._reap = connection.register_script(lua.source("reap"))
        self._settle = connection.register_script(lua.source("settle"))
        self._sweep = connection.register_script(lua.source("wf_sweep"))
        self._offsets = dict.fromkeys(self.queues, 0)  # where each queue's next settle pass starts
        self._next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def run(self) -> list[Reaped]:
        """Do the upkeep of every queue whose lock this worker gets; what was reaped in each.

        A queue that fails (Redis refuses a command on a key of the wrong type, say) is logged
        and skipped: the others are kept up all the same.

        Raises:
            QueueUnavailableError: Redis is unreachable (nothing more can be done this round).
        """
        self._next = time.monotonic() + self.interval
        done: list[Reaped] = []
        for queue in self.queues:
            try:
                with translating(self.where):
                    if self._lock(queue):
                        done.append(Reaped(queue, *self.reap(queue), *self.settle(queue)))
                        self._tidy(queue)
            except QueueError as exc:
                if exc.retryable:
                    raise
                log.warning("maintenance of queue %s skipped: %s", queue, exc)
        try:
            with translating(self.where):
                self.sweep_workflows()
        except QueueError as exc:
            if exc.retryable:
                raise
            log.warning("workflow sweep skipped: %s", exc)
        return done

    def sweep_workflows(self) -> int:
        """Settle the workflow members nothing else settled (expired unclaimed, ended outside taskq),
        once per interval across the workers (a lock); how many it settled."""
        if not self.connection.set(
            KEYS["wf_sweep"], self.owner, nx=True, px=max(100, int(self.interval * 900))
        ):
            return 0
        _, args = _sweep_args(limit=SWEEP_LIMIT)
        _looked, settled = self._sweep(args=args)
        if settled:
            log.info("workflow sweep settled %d members", settled)
        return int(settled)

    def _lock(self, queue: str) -> bool:
        lock = keys.key("maintenance", queue)
        return bool(self.connection.set(lock, self.owner, nx=True, px=max(100, int(self.interval * 900))))

    def reap(self, queue: str) -> tuple[list[str], list[str]]:
        """Take back this queue's expired executions (by Redis's clock): (requeued ids, failed ids)."""
        packed, b64 = encode_error(ABANDONED)
        _, args = _reap_args(
            queue=queue, error=packed, error_b64=b64, limit=REAP_LIMIT, max_failed=self.max_failed
        )
        names = [text(item) for item in self._reap(args=args)]
        split = names.index("|")
        return names[:split], names[split + 1 :]

    def settle(self, queue: str) -> tuple[list[str], list[str]]:
        """Settle deferred jobs whose dependencies ended outside taskq: (canceled ids, released ids).

        rq's cleanup and plain rq workers fail or finish jobs without touching our dependents.
        Bounded per pass; the next pass goes on from where this one stopped.
        """
        offset = self._offsets.get(queue, 0)
        _, args = _settle_args(queue=queue, offset=offset, limit=SETTLE_LIMIT)
        reply = [text(item) for item in self._settle(args=args)]
        looked, split = int(reply[0]), reply.index("|", 2)
        self._offsets[queue] = offset + SETTLE_LIMIT if looked == SETTLE_LIMIT else 0
        return reply[2:split], reply[split + 1 :]

    def _tidy(self, queue: str) -> None:
        # rq:queues lists queues for rq info; producers add a queue once, so keep it there.
        self.connection.sadd(keys.QUEUES_SET, keys.queue(queue))
        now = server_time(self.connection)
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(keys.key("finished", queue), 0, now)
            pipe.zremrangebyscore(keys.key("failed", queue), 0, now)
            pipe.execute()
        self._requeue_stuck_intermediate(queue)
        worker_registration.clean_worker_registry(Queue(queue, connection=self.connection))

    def _requeue_stuck_intermediate(self, queue: str) -> None:
        """Plain rq workers park jobs in `<queue>:intermediate`; rq fails the stuck ones, we requeue them.

        Our workers never use that list (their dequeue is one atomic step); this only rescues
        jobs left there by an rq worker that died.
        """
        key = keys.key("intermediate", queue)
        now = server_time(self.connection)
        for raw in self.connection.lrange(key, 0, 999):
            job_id = text(raw)
            seen = f"taskq:intermediate-seen:{queue}:{job_id}"
            if self.connection.set(seen, repr(now), nx=True, ex=3600):
                continue
            first = float(self.connection.get(seen) or now)
            running = self.connection.zscan(keys.started(queue), 0, match=f"{job_id}:*", count=1000)[1]
            if now - first < STUCK_AFTER or running:
                continue
            if not self.connection.exists(keys.job(job_id)):
                self.connection.lrem(key, 1, job_id)
                continue
            with self.connection.pipeline(transaction=True) as pipe:
                pipe.lrem(key, 1, job_id)
                pipe.hset(keys.job(job_id), Field.STATUS, JobStatus.QUEUED.value)
                pipe.lpush(keys.queue(queue), job_id)
                pipe.rpush(keys.wake(queue), "1")
                pipe.delete(seen)
                pipe.execute()
            log.warning("job requeued id=%s queue=%s reason=stuck in rq's intermediate list", job_id, queue)
