"""Rows 1 and 2: enqueue one by one, and in batches, against rq, the peers and raw `RPUSH`.

Within a round the contenders take turns in small slices (A B C D, B C D A, ...) so a noisy
second on this shared machine lands on all of them, not on whichever ran then. Nothing runs the
jobs here; the private server is emptied before each row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq import Queue

from app.config import Settings
from app.infrastructure.queue.job_params import JobParams
from app.infrastructure.queue.job_paths import PARAMS, JobRegistry
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import RQQueue
from bench import jobs
from bench.common import Ctx, Result, pct

SIGNING_KEY = "bench-signing-key-0123456789abcdef"
SLICES = 20


@dataclass
class Caller:
    """One contender of an enqueue row: `call()` enqueues `per_call` jobs."""

    row: str
    name: str
    call: Callable[[], object]
    per_call: int = 1


def taskq_queue(
    ctx: Ctx, conn: redis.Redis, signed: bool = False, typed: bool = False, wait_replicas: int = 0
) -> RQQueue:
    """An `RQQueue` with default settings (validation is always on), or with QUEUE_SIGNING_KEY set;
    `typed`: `bench_add` declares its params (`a: int, b: int`), checked on every enqueue;
    `wait_replicas`: QUEUE_WAIT_REPLICAS (the "replicated" row)."""
    env = ctx.env(**({"QUEUE_SIGNING_KEY": SIGNING_KEY} if signed else {}))
    settings = Settings.from_env({**env, "QUEUE_WAIT_REPLICAS": str(wait_replicas)})
    if not typed:
        return RQQueue(conn, settings)
    declared = {**PARAMS, jobs.ADD: JobParams(jobs.AddParams)}
    return RQQueue(conn, settings, JobRegistry(extra=settings.extra_jobs, params=declared))


def payload_size(ctx: Ctx) -> int:
    """Bytes of the `data` field taskq stores for `add(a=1, b=2)`: what the raw RPUSH pushes."""
    ctx.server.wipe()
    conn = ctx.client()
    job_id = taskq_queue(ctx, conn).enqueue("bench_add", {"a": 1, "b": 2})
    return len(conn.hget(f"rq:job:{job_id}", "data") or b"")


def interleaved(ctx: Ctx, callers: list[Caller], calls: int, warmup: int) -> list[Result]:
    """`calls` calls of each caller, in SLICES turns; jobs/s and per-call p50/p99 (ms) for each."""
    ctx.server.wipe()
    for caller in callers:
        for _ in range(warmup):
            caller.call()
    latencies: dict[str, list[float]] = {c.name: [] for c in callers}
    elapsed = dict.fromkeys(latencies, 0.0)
    per_slice = max(1, calls // SLICES)
    clock = time.perf_counter
    for turn in range(SLICES):
        shift = turn % len(callers)
        for caller in callers[shift:] + callers[:shift]:
            call, samples = caller.call, latencies[caller.name]
            start = clock()
            for _ in range(per_slice):
                t0 = clock()
                call()
                samples.append(clock() - t0)
            elapsed[caller.name] += clock() - start
    results = []
    for caller in callers:
        ms = [s * 1000 for s in latencies[caller.name]]
        rate = len(ms) * caller.per_call / elapsed[caller.name]
        results.append(
            Result(caller.row, caller.name, rate, extra={"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99)})
        )
    return results


def single(ctx: Ctx, size: int, peers: list[Caller]) -> list[Result]:
    """Row 1 (and the peers' one-by-one enqueue, which takes its turns alongside)."""
    payload = b"x" * size
    params = {"a": 1, "b": 2}
    plain, signed = taskq_queue(ctx, ctx.client()), taskq_queue(ctx, ctx.client(), signed=True)
    typed = taskq_queue(ctx, ctx.client(), typed=True)
    rq_queue = Queue("default", connection=ctx.client())
    conn = ctx.client()
    callers = [
        Caller("enqueue", "taskq enqueue", lambda: plain.enqueue("bench_add", params)),
        Caller("enqueue", "taskq enqueue (signed)", lambda: signed.enqueue("bench_add", params)),
        Caller("enqueue", "taskq enqueue (typed params)", lambda: typed.enqueue("bench_add", params)),
        Caller("enqueue", "rq Queue.enqueue", lambda: rq_queue.enqueue(jobs.add, 1, 2)),
        Caller("enqueue", "redis RPUSH", lambda: conn.rpush("bench:raw", payload)),
        *peers,
    ]
    return interleaved(ctx, callers, ctx.sizes.single, warmup=50)


def bulk(ctx: Ctx, size: int) -> list[Result]:
    """Row 2: batches of `ctx.sizes.batch`; p50/p99 are per batch."""
    batch = ctx.sizes.batch
    payload = b"x" * size
    requests = [JobRequest("bench_add", {"a": 1, "b": 2})] * batch
    plain, signed = taskq_queue(ctx, ctx.client()), taskq_queue(ctx, ctx.client(), signed=True)
    rq_queue = Queue("default", connection=ctx.client())
    conn = ctx.client()

    def rq() -> object:
        return rq_queue.enqueue_many([Queue.prepare_data(jobs.add, (1, 2)) for _ in range(batch)])

    def rpush() -> object:
        pipe = conn.pipeline(transaction=False)
        for _ in range(batch):
            pipe.rpush("bench:raw", payload)
        return pipe.execute()

    callers = [
        Caller("bulk", "taskq enqueue_many", lambda: plain.enqueue_many(requests), batch),
        Caller("bulk", "taskq enqueue_many (signed)", lambda: signed.enqueue_many(requests), batch),
        Caller("bulk", "rq enqueue_many", rq, batch),
        Caller("bulk", "pipelined RPUSH", rpush, batch),
    ]
    return interleaved(ctx, callers, max(SLICES, ctx.sizes.bulk // batch), warmup=2)
