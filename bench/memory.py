"""Row 5: resident memory (VmRSS) of taskq workers before and after many jobs: inline and pool mode.

Each worker starts idle; a warm-up of 1,000 jobs loads everything a job touches; then "before" is
read, `rss_jobs` more are enqueued with `enqueue_many` (1,000 a batch) while it runs, and "after"
is read once all are finished. Growth = after / before - 1. A pool worker is measured with its
process tree (worker, forker, work horses): what its host pays. The two modes run side by side,
each on a queue of its own, to keep `make bench` short: RSS does not depend on the CPU they share.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import redis

from app.infrastructure.queue.port import JobRequest, Priority
from app.infrastructure.queue.rq_queue import RQQueue
from bench.common import Ctx, Result
from bench.enqueue import taskq_queue
from bench.procs import Procs, wait_until

WARMUP = 1000
#: mode -> the queue (priority) its worker serves alone.
MODES: dict[str, Priority] = {"inline": "high", "pool": "low"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def descendants(pid: int) -> list[int]:
    """Every process under `pid` (/proc's children lists, walked down)."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return children + [grandchild for child in children for grandchild in descendants(child)]


def tree_kib(pid: int) -> int:
    """VmRSS of `pid` and every process under it (pages they share are counted once per process)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, RuntimeError):  # a horse that was just replaced
            total += rss_kib(member)
    return total


def run(ctx: Ctx) -> list[Result]:
    ctx.server.wipe()
    conn = ctx.client()
    queue = taskq_queue(ctx, conn)
    procs = {
        mode: Procs(f"taskq_rss_{mode}", [_command(mode, priority)], ctx.env(), ctx.logs)
        for mode, priority in MODES.items()
    }
    try:
        before = _measure(ctx, queue, conn, procs, WARMUP)
        after = _measure(ctx, queue, conn, procs, ctx.sizes.rss_jobs, done=WARMUP)
    finally:
        for group in procs.values():
            group.stop()
    results = []
    for mode in MODES:
        (kib0, _), (kib1, seconds) = before[mode], after[mode]
        extra = {"before_mib": kib0 / 1024, "after_mib": kib1 / 1024, "jobs": ctx.sizes.rss_jobs}
        extra["seconds"] = seconds
        results.append(Result("memory", f"taskq {mode}", (kib1 / kib0 - 1) * 100, unit="% RSS", extra=extra))
    return results


def _command(mode: str, priority: str) -> list[str]:
    return [sys.executable, "-m", "app.worker", "--queues", priority, "--mode", mode]  # default names


def _measure(
    ctx: Ctx, queue: RQQueue, conn: redis.Redis, procs: dict[str, Procs], jobs: int, done: int = 0
) -> dict[str, tuple[int, float]]:
    """Enqueue `jobs` more for each worker, wait until all are finished; (RSS KiB, seconds) each."""
    for priority in MODES.values():
        for start in range(0, jobs, 1000):
            batch = [JobRequest("bench_add", {"a": 1, "b": 2}, priority=priority)] * min(1000, jobs - start)
            queue.enqueue_many(batch)
    out = {}
    for mode, priority in MODES.items():
        key = f"rq:finished:{priority}"
        seconds = wait_until(
            lambda key=key: int(conn.zcard(key)) >= done + jobs,  # type: ignore[misc]
            timeout=900,
            procs=procs[mode],
            poll=0.05,
        )
        pid = procs[mode].children[0].pid
        out[mode] = (rss_kib(pid) if mode == "inline" else tree_kib(pid), seconds)
    return out
