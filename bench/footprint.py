"""Row "job bytes": what one queued job costs Redis, taskq (plain and signed) against rq.

N `bench_add` jobs are enqueued into an emptied server; the figure is the growth of Redis's
`used_memory` divided by N (the job hash, its id in the queue list, and what else a job adds).
Redis keeps a small hash compact (listpack) while every value is at most 64 bytes: a signed
job's tag has a field of its own for that reason (issue 20).
"""

from __future__ import annotations

import redis
import rq

from app.infrastructure.queue.port import JobRequest
from bench.common import Ctx, Result, quick
from bench.enqueue import taskq_queue

JOBS = 1_000 if quick() else 10_000


def _grown(ctx: Ctx, enqueue: object) -> float:
    ctx.server.wipe()
    conn = ctx.client()
    before = int(conn.info("memory")["used_memory"])
    enqueue(conn)  # type: ignore[operator]
    return (int(conn.info("memory")["used_memory"]) - before) / JOBS


def _taskq(ctx: Ctx, signed: bool) -> object:
    def enqueue(conn: redis.Redis) -> None:
        queue = taskq_queue(ctx, conn, signed=signed)
        for start in range(0, JOBS, 100):
            queue.enqueue_many(
                [JobRequest("bench_add", {"a": 1, "b": 2}) for _ in range(min(100, JOBS - start))]
            )

    return enqueue


def _rq(conn: redis.Redis) -> None:
    queue = rq.Queue("default", connection=conn)
    for _ in range(JOBS):
        queue.enqueue("bench.jobs.add", 1, 2)


def run(ctx: Ctx) -> list[Result]:
    return [
        Result("job bytes", "taskq", _grown(ctx, _taskq(ctx, signed=False)), unit="bytes"),
        Result("job bytes", "taskq (signed)", _grown(ctx, _taskq(ctx, signed=True)), unit="bytes"),
        Result("job bytes", "rq Queue.enqueue", _grown(ctx, _rq), unit="bytes"),
    ]
