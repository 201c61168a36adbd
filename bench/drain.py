"""Row 3: N queued `add(a, b)` jobs drained by a burst worker, 1 or 2 processes.

jobs/s = N / (seconds from starting the worker processes to all N in rq's finished registry);
interpreter start-up is inside that time for every contender alike. Jobs are enqueued by each
system's own bulk producer before the clock starts.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import redis
from rq import Queue

from app.infrastructure.queue.port import JobRequest
from bench import jobs
from bench.common import Ctx, Result
from bench.enqueue import taskq_queue
from bench.procs import BIN, Procs, wait_until

FINISHED = "rq:finished:default"
FAILED = "rq:failed:default"


def fill_taskq(ctx: Ctx, n: int) -> None:
    queue = taskq_queue(ctx, ctx.client())
    for start in range(0, n, 1000):
        queue.enqueue_many([JobRequest("bench_add", {"a": 1, "b": 2})] * min(1000, n - start))


def fill_rq(ctx: Ctx, n: int) -> None:
    queue = Queue("default", connection=ctx.client())
    for start in range(0, n, 1000):
        queue.enqueue_many([Queue.prepare_data(jobs.add, (1, 2)) for _ in range(min(1000, n - start))])


def taskq_commands(mode: str, processes: int) -> list[list[str]]:
    """One `python -m app.worker --processes N`: its supervisor runs the N workers, as in production."""
    worker = [sys.executable, "-m", "app.worker", "--queues", "default", "--burst", "--mode", mode]
    return [[*worker, "--processes", str(processes)]]


def rq_commands(ctx: Ctx, worker_class: str, processes: int) -> list[list[str]]:
    """N `rq worker --burst` processes side by side (rq's usual way to run several)."""
    worker = [str(BIN / "rq"), "worker", "--burst", "--url", ctx.url, "-w", worker_class, "default"]
    return [worker] * processes


def finished(conn: redis.Redis) -> int:
    return int(conn.zcard(FINISHED))


def drain(
    ctx: Ctx,
    name: str,
    n: int,
    commands: list[list[str]],
    processes: int,
    fill: Callable[[Ctx, int], None],
    count: Callable[[redis.Redis], int] = finished,
    burst: bool = True,
    env: dict[str, str] | None = None,
    row: str | None = None,
) -> Result:
    """Fill the queue, start `commands` (`processes` workers in all), time until `count()` reaches `n`.

    Also records `startup_s`, the time to the first finished job, and `steady_jobs_s`, the rate
    after it: start-up weighs differently on each system, so the table shows both. Without
    `burst` (huey, dramatiq have none) the workers are stopped as soon as the count is reached.
    """
    ctx.server.wipe()
    fill(ctx, n)
    conn = ctx.client()
    procs = Procs(name.replace(" ", "_").replace(",", ""), commands, ctx.env(**(env or {})), ctx.logs)
    try:
        first = wait_until(lambda: count(conn) >= 1, timeout=120, procs=procs, poll=0.002)
        elapsed = first + wait_until(lambda: count(conn) >= n, timeout=300, procs=procs, poll=0.01)
        if burst:
            procs.wait_exit(5)  # burst workers exit on their own once the queue is empty
    finally:
        procs.stop()
    failed = conn.zcard(FAILED)
    if failed:
        raise RuntimeError(f"{name}: {failed} jobs failed\n{procs.tail()}")
    steady = (n - 1) / (elapsed - first) if elapsed > first else 0.0
    extra = {"jobs": n, "seconds": elapsed, "startup_s": first, "steady_jobs_s": steady}
    return Result(row or f"drain {processes}p", name, n / elapsed, extra=extra)


def contenders(ctx: Ctx, processes: int) -> dict[str, Callable[[], Result]]:
    s = ctx.sizes
    p = processes
    table: dict[str, tuple[int, list[list[str]], Callable[[Ctx, int], None]]] = {
        "taskq fork": (s.drain_fork, taskq_commands("fork", p), fill_taskq),
        "taskq inline": (s.drain_inline, taskq_commands("inline", p), fill_taskq),
        "taskq pool": (s.drain_pool, taskq_commands("pool", p), fill_taskq),
        "rq Worker": (s.drain_fork_rq, rq_commands(ctx, "rq.worker.Worker", p), fill_rq),
        "rq SimpleWorker": (s.drain_simple, rq_commands(ctx, "rq.worker.SimpleWorker", p), fill_rq),
    }
    return {name: _bind(ctx, name, n * p, cmds, p, fill) for name, (n, cmds, fill) in table.items()}


def _bind(
    ctx: Ctx, name: str, n: int, commands: list[list[str]], processes: int, fill: Callable[[Ctx, int], None]
) -> Callable[[], Result]:
    return lambda: drain(ctx, name, n, commands, processes, fill)


#: Row "drain limits": the inline drain (2 processes) with limits in force that never bind, as a
#: ratio to the same drain without: the cost of the bookkeeping (slots taken and given back in the
#: claim and finish scripts; for keyed jobs, their groups and the ring).
LIMITED = {
    "taskq inline, concurrency:64": ("bench_add=concurrency:64", 0),
    "taskq inline, per key (100 keys)": ("bench_add=concurrency_per_key:64", 100),
}


def limited_contenders(ctx: Ctx) -> dict[str, Callable[[], Result]]:
    n = ctx.sizes.drain_inline
    commands = taskq_commands("inline", 2)
    found: dict[str, Callable[[], Result]] = {
        "taskq inline": lambda: drain(ctx, "taskq inline", n, commands, 2, fill_taskq, row="drain limits")
    }
    for name, (limits, keys) in LIMITED.items():
        found[name] = _bind_limited(ctx, name, n, commands, limits, keys)
    return found


def _bind_limited(
    ctx: Ctx, name: str, n: int, commands: list[list[str]], limits: str, keys: int
) -> Callable[[], Result]:
    def fill(ctx: Ctx, n: int) -> None:
        queue = taskq_queue(ctx, ctx.client())
        for start in range(0, n, 1000):
            queue.enqueue_many(
                [
                    JobRequest("bench_add", {"a": 1, "b": 2}, limit_key=f"k{i % keys}" if keys else None)
                    for i in range(start, min(n, start + 1000))
                ]
            )

    return lambda: drain(ctx, name, n, commands, 2, fill, env={"QUEUE_LIMITS": limits}, row="drain limits")


#: Row "drain group" (issue 14): N `add` jobs as the children of one group (with an `on_complete`
#: callback), enqueued and drained by 2 inline workers, against the same N jobs enqueued plain
#: (`enqueue_many`): jobs/s = N / (enqueue seconds + seconds until the last job, the group's
#: callback included, is done). The cost of a workflow: one script writing the group, and in each
#: child's finish its count, its result kept, the callback released by the last.
def group_contenders(ctx: Ctx) -> dict[str, Callable[[], Result]]:
    n = ctx.sizes.group
    commands = taskq_commands("inline", 2)
    return {
        "taskq inline": lambda: _enqueue_and_drain(ctx, "taskq inline", n, commands, fill_taskq, 0),
        "taskq inline, one group": lambda: _enqueue_and_drain(
            ctx, "taskq inline, one group", n, commands, fill_group, 1
        ),
    }


def fill_group(ctx: Ctx, n: int) -> None:
    queue = taskq_queue(ctx, ctx.client())
    queue.group(
        [JobRequest("bench_add", {"a": 1, "b": 2}) for _ in range(n)],
        on_complete=JobRequest("bench_add", {"a": 0, "b": 0}),
        results_param=None,
    )


def _enqueue_and_drain(
    ctx: Ctx, name: str, n: int, commands: list[list[str]], fill: Callable[[Ctx, int], None], extra: int
) -> Result:
    took: list[float] = []

    def timed(ctx: Ctx, _: int) -> None:
        started = time.perf_counter()
        fill(ctx, n)
        took.append(time.perf_counter() - started)

    drained = drain(ctx, name, n + extra, commands, 2, timed, row="drain group")
    seconds = took[0] + drained.extra["seconds"]
    return Result("drain group", name, n / seconds, extra={**drained.extra, "jobs": n, "enqueue_s": took[0]})
