"""SAQ on the bench's private Redis: `saq bench.saq_app.settings`, concurrency = the row's."""

from __future__ import annotations

import os

from saq import Queue

from bench.aio_jobs import io_job_ctx

CONCURRENCY = int(os.environ.get("BENCH_IO_CONCURRENCY", "100"))

queue = Queue.from_url(os.environ["BENCH_REDIS_URL"])
settings = {"queue": queue, "functions": [io_job_ctx], "concurrency": CONCURRENCY}
