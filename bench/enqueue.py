"""Rows 1 and 2: enqueue one by one, and in batches, against rq and a raw RPUSH of the same size.

Nothing runs the jobs here; the private server is emptied before each contender.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis
from rq import Queue

from app.config import Settings
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import RQQueue
from bench import jobs
from bench.common import Ctx, Result, pct

SIGNING_KEY = "bench-signing-key-0123456789abcdef"
WARMUP = 50


def taskq_queue(ctx: Ctx, conn: redis.Redis, signed: bool = False) -> RQQueue:
    """An `RQQueue` with default settings (validation is always on), or with QUEUE_SIGNING_KEY set."""
    env = ctx.env(**({"QUEUE_SIGNING_KEY": SIGNING_KEY} if signed else {}))
    return RQQueue(conn, Settings.from_env(env))


def payload_size(ctx: Ctx) -> int:
    """Bytes of the `data` field taskq stores for `add(a=1, b=2)`: what the raw RPUSH pushes."""
    ctx.server.wipe()
    conn = ctx.client()
    job_id = taskq_queue(ctx, conn).enqueue("bench_add", {"a": 1, "b": 2})
    return len(conn.hget(f"rq:job:{job_id}", "data") or b"")


def _timed_calls(call: Callable[[], object], n: int, per_call: int, row: str, name: str) -> Result:
    for _ in range(WARMUP if per_call == 1 else 2):
        call()
    latencies = []
    clock = time.perf_counter
    start = clock()
    for _ in range(n):
        t0 = clock()
        call()
        latencies.append(clock() - t0)
    elapsed = clock() - start
    ms = [s * 1000 for s in latencies]
    return Result(row, name, n * per_call / elapsed, extra={"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99)})


def single(ctx: Ctx, size: int) -> dict[str, Callable[[], Result]]:
    """Row 1 contenders: each returns jobs/s and the p50/p99 of one call."""
    n = ctx.sizes.single
    payload = b"x" * size

    def taskq(signed: bool) -> Callable[[], Result]:
        def run() -> Result:
            queue = taskq_queue(ctx, ctx.client(), signed)
            params = {"a": 1, "b": 2}
            name = "taskq enqueue" + (" (signed)" if signed else "")
            return _timed_calls(lambda: queue.enqueue("bench_add", params), n, 1, "enqueue", name)

        return run

    def rq() -> Result:
        queue = Queue("default", connection=ctx.client())
        return _timed_calls(lambda: queue.enqueue(jobs.add, 1, 2), n, 1, "enqueue", "rq Queue.enqueue")

    def rpush() -> Result:
        conn = ctx.client()
        return _timed_calls(lambda: conn.rpush("bench:raw", payload), n, 1, "enqueue", "redis RPUSH")

    return {
        "taskq enqueue": taskq(False),
        "taskq enqueue (signed)": taskq(True),
        "rq Queue.enqueue": rq,
        "redis RPUSH": rpush,
    }


def bulk(ctx: Ctx, size: int) -> dict[str, Callable[[], Result]]:
    """Row 2 contenders: batches of `ctx.sizes.batch`; p50/p99 are per batch."""
    batch = ctx.sizes.batch
    batches = max(1, ctx.sizes.bulk // batch)
    payload = b"x" * size

    def taskq(signed: bool) -> Callable[[], Result]:
        def run() -> Result:
            queue = taskq_queue(ctx, ctx.client(), signed)
            requests = [JobRequest("bench_add", {"a": 1, "b": 2})] * batch
            name = "taskq enqueue_many" + (" (signed)" if signed else "")
            return _timed_calls(lambda: queue.enqueue_many(requests), batches, batch, "bulk", name)

        return run

    def rq() -> Result:
        queue = Queue("default", connection=ctx.client())

        def call() -> object:
            return queue.enqueue_many([Queue.prepare_data(jobs.add, (1, 2)) for _ in range(batch)])

        return _timed_calls(call, batches, batch, "bulk", "rq enqueue_many")

    def rpush() -> Result:
        conn = ctx.client()

        def call() -> object:
            pipe = conn.pipeline(transaction=False)
            for _ in range(batch):
                pipe.rpush("bench:raw", payload)
            return pipe.execute()

        return _timed_calls(call, batches, batch, "bulk", "pipelined RPUSH")

    return {
        "taskq enqueue_many": taskq(False),
        "taskq enqueue_many (signed)": taskq(True),
        "rq enqueue_many": rq,
        "pipelined RPUSH": rpush,
    }
