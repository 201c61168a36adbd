"""Row 4: enqueue-to-start latency with an idle worker.

A sample: `t0 = time.time()`, enqueue `stamp(key)`, then BLPOP `key`: the job pushed the
`time.time()` it took first thing when it started. Latency = stamp - t0, so the enqueue call is
inside it. Samples are spaced so the worker is idle (blocked, waiting) when each job arrives.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable

import redis
from rq import Queue

from bench import jobs
from bench.common import Ctx, Result, pct
from bench.procs import BIN, Procs

WARMUP = 5


def measure(
    ctx: Ctx, name: str, command: list[str], enqueue: Callable[[str], object], samples: int
) -> Result:
    ctx.server.wipe()
    conn = ctx.client()
    procs = Procs(name.replace(" ", "_"), [command], ctx.env(), ctx.logs)
    try:
        # The first job waits for the worker to start; a few more warm it up. Not measured.
        for i in range(WARMUP):
            _sample(conn, enqueue, timeout=60 if i == 0 else 10, procs=procs)
        latencies = []
        for _ in range(samples):
            time.sleep(ctx.sizes.latency_gap)
            latencies.append(_sample(conn, enqueue, timeout=10, procs=procs) * 1000)
    finally:
        procs.stop()
    return Result(
        "latency",
        name,
        pct(latencies, 50),
        unit="ms",
        extra={"p50_ms": pct(latencies, 50), "p99_ms": pct(latencies, 99), "samples": samples},
    )


def _sample(conn: redis.Redis, enqueue: Callable[[str], object], timeout: float, procs: Procs) -> float:
    key = f"bench:stamp:{uuid.uuid4().hex}"
    t0 = time.time()
    enqueue(key)
    reply = conn.blpop([key], timeout=timeout)
    if reply is None:
        raise TimeoutError(f"{procs.name}: job did not start within {timeout}s\n{procs.tail()}")
    return float(reply[1]) - t0


def contenders(ctx: Ctx) -> dict[str, Callable[[], Result]]:
    from bench.enqueue import taskq_queue

    n = ctx.sizes.latency

    def taskq(mode: str) -> Callable[[], Result]:
        def run() -> Result:
            queue = taskq_queue(ctx, ctx.client())
            command = [sys.executable, "-m", "app.worker", "--queues", "default", "--mode", mode]
            return measure(
                ctx, f"taskq {mode}", command, lambda key: queue.enqueue("bench_stamp", {"key": key}), n
            )

        return run

    def rq(worker_class: str, name: str) -> Callable[[], Result]:
        def run() -> Result:
            queue = Queue("default", connection=ctx.client())
            command = [str(BIN / "rq"), "worker", "--url", ctx.url, "-w", worker_class, "default"]
            return measure(ctx, name, command, lambda key: queue.enqueue(jobs.stamp, key), n)

        return run

    return {
        "taskq inline": taskq("inline"),
        "taskq fork": taskq("fork"),
        "taskq pool": taskq("pool"),
        "rq SimpleWorker": rq("rq.worker.SimpleWorker", "rq SimpleWorker"),
        "rq Worker": rq("rq.worker.Worker", "rq Worker"),
    }
