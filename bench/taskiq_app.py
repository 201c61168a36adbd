"""taskiq with its Redis broker (taskiq-redis's ListQueueBroker) on the bench's private Redis:
`taskiq worker bench.taskiq_app:broker --workers 1 --max-async-tasks <concurrency>`."""

from __future__ import annotations

import os

from taskiq_redis import ListQueueBroker

from bench.aio_jobs import io_job

broker = ListQueueBroker(os.environ["BENCH_REDIS_URL"])
io_task = broker.task(task_name="io_job")(io_job)
