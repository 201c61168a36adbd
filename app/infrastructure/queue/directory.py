"""Which jobs the live workers know: the directory producers, workers and the CLI read.

Each worker publishes the jobs it runs (`{job path: params version}`) in its rq worker hash
`rq:worker:<name>` when it registers (`presence.py`), in the same write as its birth; the hash
lives as long as the worker's heartbeats, so what is listed is what live workers know.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from app.infrastructure.queue import keys
from app.infrastructure.queue.record import text
from app.infrastructure.redis.connection import Guard

#: The worker hash's field with the jobs it knows (JSON); only this module reads and writes it.
JOBS_FIELD = "taskq_jobs"

#: (job path, params version, queue) -> whether a live worker serving that queue knows the job.
Knows = Callable[[str, int, str], bool]


def encode_jobs(jobs: Mapping[str, int]) -> str:
    return json.dumps(dict(sorted(jobs.items())), separators=(",", ":"))


def decode_jobs(raw: bytes | str | None) -> dict[str, int]:
    """What a worker hash says it knows; anything unreadable (a plain rq worker: absent) is nothing."""
    try:
        jobs = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(jobs, dict):
        return {}
    return {str(path): v for path, v in jobs.items() if isinstance(v, int) and not isinstance(v, bool)}


def nobody(job_name: str, version: int, queue: str) -> bool:
    """The `Knows` of a world with no other worker (the in-memory queue)."""
    return False


@dataclass(frozen=True)
class LiveWorker:
    """A live worker as the directory sees it: its queues and the jobs it knows."""

    name: str
    queues: tuple[str, ...]
    jobs: Mapping[str, int]

    def knows(self, job_name: str, version: int, queue: str | None = None) -> bool:
        return self.jobs.get(job_name) == version and (queue is None or queue in self.queues)


#: What is read of each worker hash (`live_workers` reads the rows in this order).
WORKER_FIELDS = ["queues", JOBS_FIELD, "death", "birth"]


def live_workers(worker_keys: list[str], rows: list[Any]) -> list[LiveWorker]:
    """The live workers among `worker_keys`, from their hashes' `WORKER_FIELDS` (one row each)."""
    prefix = keys.key("worker", "")
    return [
        LiveWorker(key.removeprefix(prefix), tuple(text(queues).split(",")), decode_jobs(jobs))
        for key, (queues, jobs, death, birth) in zip(worker_keys, rows, strict=True)
        if birth is not None and death is None and queues
    ]


class WorkerDirectory:
    """Reads the live workers' published jobs (two round trips: the set, then their hashes)."""

    def __init__(self, connection: redis.Redis, retry_seconds: float) -> None:
        self.connection = connection
        self._guard = Guard(connection, retry_seconds)

    def live(self) -> list[LiveWorker]:
        """The live workers (registered, hash present, no death), by name.

        Raises:
            QueueUnavailableError: Redis unreachable.
        """
        members = self._guard.call(lambda: self.connection.smembers(keys.WORKERS_SET))
        worker_keys = sorted(text(member) for member in members)
        if not worker_keys:
            return []

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for key in worker_keys:
                    pipe.hmget(key, WORKER_FIELDS)
                return pipe.execute()

        return live_workers(worker_keys, self._guard.call(read))

    def knows(self, job_name: str, version: int, queue: str) -> bool:
        """Whether a live worker serving `queue` knows `job_name` at params `version` (a `Knows`)."""
        return any(worker.knows(job_name, version, queue) for worker in self.live())
