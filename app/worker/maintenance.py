"""Periodic upkeep a worker does for its queues: take back abandoned jobs, expire registries.

One worker per queue does it per interval (a Redis lock). A job whose worker died (SIGKILL,
OOM, lost host) is back at the front of its queue within heartbeat TTL + interval (about
35 s by default), or failed with its reason when it has no retries left: never stuck.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis
from rq import Queue, worker_registration

from app.infrastructure.queue import keys, scripts
from app.infrastructure.queue.record import encode_error, rq_time, text

log = logging.getLogger("taskq.worker")

ABANDONED = (
    "AbandonedJobError: the worker running this job stopped sending heartbeats "
    "(it was killed, ran out of memory, or lost its host); taken back by the reaper"
)
STUCK_AFTER = 60.0


class Maintenance:
    """Runs the reaper and registry cleanup for a set of queues, at most once per interval each."""

    def __init__(self, connection: redis.Redis, queues: Sequence[str], interval: float, owner: str) -> None:
        self.connection = connection
        self.queues = tuple(queues)
        self.interval = interval
        self.owner = owner
        self._reap = connection.register_script(scripts.source("reap"))
        self._next = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def run(self) -> dict[str, tuple[list[str], list[str]]]:
        """Do the upkeep of every queue whose lock this worker gets; return what was reaped."""
        self._next = time.monotonic() + self.interval
        done: dict[str, tuple[list[str], list[str]]] = {}
        for queue in self.queues:
            lock = f"taskq:maintenance:{queue}"
            if not self.connection.set(lock, self.owner, nx=True, px=max(100, int(self.interval * 900))):
                continue
            # rq:queues lists queues for rq info; producers add a queue once, so keep it there.
            self.connection.sadd(keys.QUEUES_SET, keys.queue(queue))
            done[queue] = self.reap(queue)
            self._expire_registries(queue)
            self._requeue_stuck_intermediate(queue)
            worker_registration.clean_worker_registry(Queue(queue, connection=self.connection))
        return done

    def reap(self, queue: str) -> tuple[list[str], list[str]]:
        """Take back this queue's expired executions: (requeued ids, failed ids)."""
        now = time.time()
        packed, b64 = encode_error(ABANDONED)
        reply = self._reap(args=[queue, repr(now), rq_time(now), packed, b64, 1000])
        names = [item.decode() for item in reply]
        split = names.index("|")
        return names[:split], names[split + 1 :]

    def _expire_registries(self, queue: str) -> None:
        now = time.time()
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(keys.finished(queue), 0, now)
            pipe.zremrangebyscore(keys.failed(queue), 0, now)
            pipe.execute()

    def _requeue_stuck_intermediate(self, queue: str) -> None:
        """Plain rq workers park jobs in `<queue>:intermediate`; rq fails the stuck ones, we requeue them.

        Our workers never use that list (their dequeue is one atomic step); this only rescues
        jobs left there by an rq worker that died.
        """
        key = keys.intermediate(queue)
        for raw in self.connection.lrange(key, 0, 999):
            job_id = text(raw)
            seen = f"taskq:intermediate-seen:{queue}:{job_id}"
            if self.connection.set(seen, repr(time.time()), nx=True, ex=3600):
                continue
            first = float(self.connection.get(seen) or time.time())
            running = self.connection.zscan(keys.started(queue), 0, match=f"{job_id}:*", count=1000)[1]
            if time.time() - first < STUCK_AFTER or running:
                continue
            if not self.connection.exists(keys.job(job_id)):
                self.connection.lrem(key, 1, job_id)
                continue
            with self.connection.pipeline(transaction=True) as pipe:
                pipe.lrem(key, 1, job_id)
                pipe.hset(keys.job(job_id), "status", "queued")
                pipe.lpush(keys.queue(queue), job_id)
                pipe.rpush(keys.wake(queue), "1")
                pipe.delete(seen)
                pipe.execute()
            log.warning("job requeued id=%s queue=%s reason=stuck in rq's intermediate list", job_id, queue)
