"""What every row shares: the private server, the sizes, one measurement, percentiles."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.jobs import JOB_ENV
from bench.redis_server import PrivateRedis


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


@dataclass(frozen=True)
class Sizes:
    """Job counts per contender. `BENCH_QUICK=1` divides them by ~10 for a smoke test."""

    rounds: int = 3
    single: int = 10_000  # row 1: calls per contender, in 20 turns
    bulk: int = 30_000  # row 2: jobs per contender, in batches of `batch`, in 20 turns
    batch: int = 500
    drain_fork_rq: int = 200  # row 3: rq's fork Worker, ~40-80 jobs/s
    drain_fork: int = 600  # taskq fork mode, ~120-400 jobs/s
    drain_simple: int = 800  # rq SimpleWorker
    drain_inline: int = 6000  # taskq inline mode
    drain_pool: int = 4000  # taskq pool mode
    latency: int = 200  # row 4: samples per contender
    latency_slow: int = 60  # dramatiq: ~80 ms each
    latency_gap: float = 0.005  # seconds between samples
    rss_jobs: int = 100_000  # row 5
    peer: int = 3000  # row 6: jobs enqueued one by one, then drained
    io_jobs: int = 2000  # "io drain": jobs of `await asyncio.sleep(0.05)`, concurrency 100
    async_single: int = 3000  # "async enqueue": awaited calls per contender, in 20 turns
    group: int = 10_000  # row "drain group": children of one group (issue 14)

    @classmethod
    def from_env(cls) -> Sizes:
        sizes = cls()
        if quick():
            sizes = cls(
                rounds=1, single=1000, bulk=10_000, drain_fork_rq=30, drain_fork=150, drain_simple=150,
                drain_inline=400, drain_pool=400, latency=20, latency_slow=6, rss_jobs=10_000, peer=300,
                io_jobs=400, async_single=500, group=1000,
            )  # fmt: skip
        rss = os.environ.get("BENCH_RSS_JOBS")
        if rss:
            sizes = cls(**{**sizes.__dict__, "rss_jobs": int(rss)})
        return sizes


@dataclass
class Ctx:
    server: PrivateRedis
    sizes: Sizes
    logs: Path

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> redis.Redis:
        return self.server.client()

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for worker processes: our private server, the bench jobs registered."""
        return {"REDIS_URL": self.url, "BENCH_REDIS_URL": self.url, **JOB_ENV, **extra}


@dataclass
class Result:
    """One contender in one row of one round. `value` is jobs/s, or ms for latency rows."""

    row: str
    contender: str
    value: float
    unit: str = "jobs/s"
    extra: dict[str, float] = field(default_factory=dict)


def pct(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `samples`, nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)
