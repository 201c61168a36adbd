"""Where `report_progress` writes: the `progress` entry of the job's meta, nothing else of it.

Writes are throttled (at most one per `MIN_INTERVAL`, plus the final one), so a job may report
in a tight loop without flooding Redis.
"""

from __future__ import annotations

import logging
import time

import redis

from app.infrastructure.queue import keys
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.schema import Field
from app.infrastructure.queue.serialization import Serializer
from app.infrastructure.queue.store import Claim, ProgressSink
from app.infrastructure.redis.connection import describe, translating

log = logging.getLogger("taskq.worker")
MIN_INTERVAL = 0.1
WATCH_ATTEMPTS = 20


class ProgressWriter:
    """Makes, for each claimed job, the sink its `report_progress` calls write to."""

    def __init__(self, connection: redis.Redis, serializer: Serializer) -> None:
        self.connection = connection
        self.serializer = serializer
        self.where = describe(connection)

    def __call__(self, claim: Claim) -> ProgressSink:
        last = [0.0]

        def sink(done: int, total: int, message: str) -> None:
            now = time.monotonic()
            if done < total and now - last[0] < MIN_INTERVAL:
                return
            last[0] = now
            try:
                self.write(claim.job_id, {"done": done, "total": total, "message": message})
            except QueueError as exc:
                log.warning("progress not recorded for job %s: %s", claim.job_id, exc)

        return sink

    def write(self, job_id: str, progress: dict[str, object]) -> None:
        """Set meta['progress'] on the job, keeping every other meta entry (optimistic lock)."""
        key = keys.job(job_id)
        with translating(self.where), self.connection.pipeline(transaction=True) as pipe:
            # Bounded: only the job's own meta writers race here; a report lost to a storm of
            # conflicts is superseded by the next one.
            for _ in range(WATCH_ATTEMPTS):
                try:
                    pipe.watch(key)
                    if not pipe.exists(key):
                        return
                    raw = pipe.hget(key, Field.META)
                    meta = self._load(raw)
                    meta["progress"] = progress
                    pipe.multi()
                    pipe.hset(key, Field.META, self.serializer.dumps(meta))
                    pipe.execute()
                    return
                except redis.exceptions.WatchError:
                    continue
            log.warning("progress not recorded for job %s: meta kept changing", job_id)

    def _load(self, raw: bytes | str | None) -> dict[str, object]:
        if not raw or isinstance(raw, str):
            return {}
        try:
            meta = self.serializer.loads(raw)
        except Exception:
            return {}
        return meta if isinstance(meta, dict) else {}
