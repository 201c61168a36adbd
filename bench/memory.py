"""Row 5: resident memory (VmRSS) of one taskq inline worker before and after many jobs.

The worker starts idle; a warm-up of 1,000 jobs loads everything a job touches; then "before" is
read, `rss_jobs` more are enqueued with `enqueue_many` (1,000 a batch) while it runs, and "after"
is read once all are finished. Growth = after / before - 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.infrastructure.queue.port import JobRequest
from bench.common import Ctx, Result
from bench.drain import finished
from bench.enqueue import taskq_queue
from bench.procs import Procs, wait_until

WARMUP = 1000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run(ctx: Ctx) -> Result:
    ctx.server.wipe()
    conn = ctx.client()
    queue = taskq_queue(ctx, conn)
    command = [sys.executable, "-m", "app.worker", "--queues", "default", "--mode", "inline"]
    procs = Procs("taskq_rss", [command], ctx.env(), ctx.logs)
    total = WARMUP + ctx.sizes.rss_jobs
    try:
        queue.enqueue_many([JobRequest("bench_add", {"a": 1, "b": 2})] * WARMUP)
        wait_until(lambda: finished(conn) >= WARMUP, timeout=120, procs=procs, poll=0.01)
        pid = procs.children[0].pid
        before = rss_kib(pid)
        for start in range(0, ctx.sizes.rss_jobs, 1000):
            queue.enqueue_many(
                [JobRequest("bench_add", {"a": 1, "b": 2})] * min(1000, ctx.sizes.rss_jobs - start)
            )
        seconds = wait_until(lambda: finished(conn) >= total, timeout=600, procs=procs, poll=0.05)
        after = rss_kib(pid)
    finally:
        procs.stop()
    growth = (after / before - 1) * 100
    extra = {
        "before_mib": before / 1024,
        "after_mib": after / 1024,
        "jobs": ctx.sizes.rss_jobs,
        "seconds": seconds,
    }
    return Result("memory", "taskq inline", growth, unit="% RSS", extra=extra)
