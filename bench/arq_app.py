"""arq on the bench's private Redis: `arq bench.arq_app.WorkerSettings --burst`, max_jobs = concurrency."""

from __future__ import annotations

import os

from arq.connections import RedisSettings

from bench.aio_jobs import io_job_ctx

CONCURRENCY = int(os.environ.get("BENCH_IO_CONCURRENCY", "100"))


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])


class WorkerSettings:
    functions = [io_job_ctx]  # noqa: RUF012 (arq reads the class attribute)
    redis_settings = redis_settings()
    max_jobs = CONCURRENCY
    keep_result = 0
    poll_delay = 0.01  # arq's default 0.5 s would idle between polls; give it its best
