"""The bench's jobs, registered for taskq's worker through `QUEUE_EXTRA_JOBS` (see `JOB_ENV`).

The worker runs only registered jobs; `QUEUE_EXTRA_JOBS` is the supported way to register more
without touching `job_paths.py`. rq runs the same functions by their dotted path.
"""

from __future__ import annotations

import os
import time

import redis
from pydantic import BaseModel, ConfigDict

ADD = "bench.jobs.add"
STAMP = "bench.jobs.stamp"
#: What a taskq producer and worker need in their environment to know these jobs.
JOB_ENV = {"QUEUE_EXTRA_JOBS": f"bench_add={ADD},bench_stamp={STAMP}"}

_client: redis.Redis | None = None


class AddParams(BaseModel):
    """`add(a, b)` declared, as `job_paths.PARAMS` declares a job: for the typed-params enqueue."""

    model_config = ConfigDict(extra="forbid")

    a: int
    b: int


def add(a: int, b: int) -> int:
    """The trivial job of every drain row."""
    return a + b


def stamp(key: str) -> None:
    """Record when this job started (`time.time()`, taken first) on the list `key` of BENCH_REDIS_URL.

    The push happens after the stamp, so its round trip is not part of the measured latency.
    """
    started = time.time()
    global _client
    if _client is None or _client.connection_pool.pid != os.getpid():
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    _client.rpush(key, repr(started))
