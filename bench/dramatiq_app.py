"""dramatiq on the bench's private Redis: `dramatiq bench.dramatiq_app --processes 1`, other defaults kept."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["BENCH_REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor
def add(a: int, b: int) -> int:
    return a + b


@dramatiq.actor
def stamp(key: str) -> None:
    from bench import jobs

    jobs.stamp(key)
