"""The asyncio rows (issue 13): an I/O-bound drain with concurrency in one process, and the
asyncio producer's enqueue, taskq against arq, SAQ and taskiq (with its Redis broker).

- "io drain": `io_jobs` jobs of `await asyncio.sleep(0.05)` (bench/aio_jobs.py), one worker
  process running up to `io_concurrency` at once (`python -m app.worker --concurrency 100`,
  arq's `max_jobs`, SAQ's `concurrency`, taskiq's `--max-async-tasks`). jobs/s = jobs / (last end
  - first start, as the jobs stamped them); "x ceiling" is that over concurrency / job time, the
  most any system could do.
- "async enqueue": one coroutine awaiting one enqueue after another on one loop, in turns.
The peers are the `bench` extra (arq installed apart by `make bench`); one not installed is left out.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.bootstrap import bootstrap_async
from app.config import Settings
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import RQQueue
from bench import aio_jobs
from bench.common import Ctx, Result, pct
from bench.enqueue import SLICES
from bench.jobs import JOB_ENV
from bench.procs import BIN, Procs, wait_until

CONCURRENCY = 100
PEERS = ("arq", "saq", "taskiq")
TASKIQ = [str(BIN / "taskiq"), "worker", "bench.taskiq_app:broker", "--workers", "1"]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _ledger_path(ctx: Ctx) -> Path:
    return ctx.logs / "io-ledger.txt"


def _env(ctx: Ctx) -> dict[str, str]:
    extra = f"{JOB_ENV['QUEUE_EXTRA_JOBS']},{aio_jobs.JOB_ENV['QUEUE_EXTRA_JOBS']}"
    return ctx.env(
        QUEUE_EXTRA_JOBS=extra, BENCH_IO_CONCURRENCY=str(CONCURRENCY), BENCH_IO_LEDGER=str(_ledger_path(ctx))
    )


@dataclass
class Contender:
    fill: Callable[[Ctx, int], Coroutine[Any, Any, None]]
    command: list[str]
    burst: bool


async def _fill_taskq(ctx: Ctx, n: int) -> None:
    queue = RQQueue(ctx.client(), Settings.from_env(_env(ctx)))
    for start in range(0, n, 1000):
        queue.enqueue_many([JobRequest("bench_io")] * min(1000, n - start))


async def _fill_arq(ctx: Ctx, n: int) -> None:
    from arq import create_pool

    from bench import arq_app

    pool = await create_pool(arq_app.redis_settings())
    try:
        for _ in range(n):
            await pool.enqueue_job("io_job_ctx")
    finally:
        await pool.aclose()


async def _fill_saq(ctx: Ctx, n: int) -> None:
    from bench import saq_app

    queue = saq_app.queue
    await queue.connect()
    try:
        for _ in range(n):
            await queue.enqueue("io_job_ctx")
    finally:
        await queue.disconnect()


async def _fill_taskiq(ctx: Ctx, n: int) -> None:
    from bench import taskiq_app

    await taskiq_app.broker.startup()
    try:
        for _ in range(n):
            await taskiq_app.io_task.kiq()
    finally:
        await taskiq_app.broker.shutdown()


def _contenders() -> dict[str, Contender]:
    c = str(CONCURRENCY)
    found = {
        "taskq --concurrency 100": Contender(
            _fill_taskq,
            [sys.executable, "-m", "app.worker", "--queues", "default", "--burst", "--concurrency", c],
            True,
        )
    }
    if installed("arq"):
        found["arq"] = Contender(
            _fill_arq, [str(BIN / "arq"), "bench.arq_app.WorkerSettings", "--burst"], True
        )
    if installed("saq"):
        found["saq"] = Contender(_fill_saq, [str(BIN / "saq"), "bench.saq_app.settings", "--quiet"], False)
    if installed("taskiq_redis"):
        found["taskiq"] = Contender(
            _fill_taskiq,
            [*TASKIQ, "--max-async-tasks", c, "--no-configure-logging"],
            False,
        )
    return found


def io_drain(ctx: Ctx, name: str, contender: Contender) -> Result:
    n = ctx.sizes.io_jobs
    ctx.server.wipe()
    os.environ["BENCH_REDIS_URL"] = ctx.url  # the peers' apps read it when first imported
    asyncio.run(contender.fill(ctx, n))
    ctx.logs.mkdir(parents=True, exist_ok=True)
    ledger = aio_jobs.Ledger(_ledger_path(ctx))
    procs = Procs(f"io_{name.split()[0]}", [contender.command], _env(ctx), ctx.logs)
    try:
        wait_until(lambda: ledger.read() >= n, timeout=120, procs=procs, poll=0.01)
        if contender.burst:
            procs.wait_exit(5)
    finally:
        procs.stop(grace=2.0)  # the figure is taken; taskiq's graceful exit alone took ~5 s
    ledger.read()
    seconds = ledger.last - ledger.first
    rate = n / seconds if seconds > 0 else 0.0
    ceiling = CONCURRENCY / aio_jobs.IO_SECONDS
    extra = {"jobs": n, "seconds": seconds, "ceiling_ratio": rate / ceiling}
    return Result("io drain", name, rate, extra=extra)


def drain_contenders(ctx: Ctx) -> dict[str, Callable[[], Result]]:
    return {name: _bind(ctx, name, c) for name, c in _contenders().items()}


def _bind(ctx: Ctx, name: str, contender: Contender) -> Callable[[], Result]:
    return lambda: io_drain(ctx, name, contender)


# -- async enqueue ----------------------------------------------------------------------------


@dataclass
class AsyncCaller:
    name: str
    call: Callable[[], Awaitable[Any]]
    close: Callable[[], Awaitable[Any]]


async def _callers(ctx: Ctx) -> list[AsyncCaller]:
    os.environ["BENCH_REDIS_URL"] = ctx.url
    settings = Settings.from_env(_env(ctx))
    services = bootstrap_async(settings)
    queue = services.queue
    callers = [
        AsyncCaller(
            "taskq AsyncRQQueue.enqueue",
            lambda: queue.enqueue("bench_add", {"a": 1, "b": 2}),
            services.aclose,
        )
    ]
    if installed("arq"):
        from arq import create_pool

        from bench import arq_app

        pool = await create_pool(arq_app.redis_settings())
        callers.append(AsyncCaller("arq enqueue_job", lambda: pool.enqueue_job("io_job_ctx"), pool.aclose))
    if installed("saq"):
        from bench import saq_app

        await saq_app.queue.connect()
        callers.append(
            AsyncCaller("saq enqueue", lambda: saq_app.queue.enqueue("io_job_ctx"), saq_app.queue.disconnect)
        )
    if installed("taskiq_redis"):
        from bench import taskiq_app

        await taskiq_app.broker.startup()
        callers.append(AsyncCaller("taskiq kiq", taskiq_app.io_task.kiq, taskiq_app.broker.shutdown))
    return callers


async def _interleaved(ctx: Ctx, calls: int, warmup: int) -> list[Result]:
    callers = await _callers(ctx)
    try:
        for caller in callers:
            for _ in range(warmup):
                await caller.call()
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
                    await call()
                    samples.append(clock() - t0)
                elapsed[caller.name] += clock() - start
    finally:
        for caller in callers:
            await caller.close()
    results = []
    for caller in callers:
        ms = [s * 1000 for s in latencies[caller.name]]
        rate = len(ms) / elapsed[caller.name]
        results.append(
            Result("async enqueue", caller.name, rate, extra={"p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99)})
        )
    return results


def enqueue(ctx: Ctx) -> list[Result]:
    """Row "async enqueue": `async_single` awaited enqueues per contender, in SLICES turns."""
    ctx.server.wipe()
    return asyncio.run(_interleaved(ctx, ctx.sizes.async_single, warmup=50))
