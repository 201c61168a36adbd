"""huey on the bench's private Redis: `huey_consumer bench.huey_app.huey`, defaults kept (1 thread worker)."""

from __future__ import annotations

import os

from huey import RedisHuey

from bench import jobs

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])


@huey.task()
def add(a: int, b: int) -> int:
    return a + b


@huey.task()
def stamp(key: str) -> None:
    jobs.stamp(key)
