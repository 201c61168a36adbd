"""`make bench` / `python -m bench`: every row, interleaved rounds, one table, bench/results/latest.json.

Environment: BENCH_QUICK=1 (sizes / ~10, one round: a smoke test), BENCH_RSS_JOBS (row 5's job
count), BENCH_OUTPUT (where the JSON goes). Everything runs against a private redis-server.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import aio, drain, enqueue, footprint, latency, memory, peers, replicated, report
from bench.common import Ctx, Result, Sizes, quick
from bench.redis_server import PrivateRedis

RESULTS = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rotated(items: list[Any], by: int) -> list[Any]:
    """The contenders in a different order each round, so none is always first after a wipe."""
    by %= max(1, len(items))
    return items[by:] + items[:by]


def run_group(group: dict[str, Callable[[], Result]], round_no: int, out: list[Result]) -> None:
    for name, contender in rotated(list(group.items()), round_no):
        started = time.perf_counter()
        result = contender()
        out.append(result)
        took = time.perf_counter() - started
        log(f"  {result.row:14} {name:28} {result.value:12,.2f} {result.unit:7} ({took:.1f} s)")


def run_turns(results: list[Result], out: list[Result]) -> None:
    for result in results:
        out.append(result)
        log(f"  {result.row:14} {result.contender:28} {result.value:12,.2f} {result.unit:7} (in turns)")


def one_round(ctx: Ctx, size: int, round_no: int) -> list[Result]:
    results: list[Result] = []
    run_turns(enqueue.single(ctx, size, peers.enqueue_callers(ctx)), results)
    run_turns(enqueue.bulk(ctx, size), results)
    run_group(drain.contenders(ctx, 1), round_no, results)
    run_group(drain.contenders(ctx, 2), round_no, results)
    run_group(drain.limited_contenders(ctx), round_no, results)
    run_group(drain.group_contenders(ctx), round_no, results)
    run_group(peers.drain_contenders(ctx), round_no, results)
    run_turns(aio.enqueue(ctx), results)
    run_group(aio.drain_contenders(ctx), round_no, results)
    run_group({**latency.contenders(ctx), **peers.latency_contenders(ctx)}, round_no, results)
    return results


def machine(server: PrivateRedis) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "load_1_5_15": list(os.getloadavg()),
        "python": platform.python_version(),
        "redis": server.version(),
        "platform": platform.platform(),
    }


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so the `finally` blocks stop the workers, then the server


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.perf_counter()
    sizes = Sizes.from_env()
    RESULTS.mkdir(exist_ok=True)
    ctx_logs = RESULTS / "logs"
    server = PrivateRedis().start()
    try:
        ctx = Ctx(server, sizes, ctx_logs)
        before = machine(server)
        log(f"private redis-server {before['redis']} on {server.url}; load {before['load_1_5_15']}")
        log(f"sizes {sizes}")
        size = enqueue.payload_size(ctx)
        rounds = []
        for round_no in range(sizes.rounds):
            log(f"round {round_no + 1}/{sizes.rounds}")
            rounds.append(one_round(ctx, size, round_no))
        log(f"memory: {sizes.rss_jobs:,} jobs")
        once = [*memory.run(ctx), *footprint.run(ctx), *replicated.run(ctx)]
        for result in once:
            log(f"  {result.row} {result.contender}: {result.value:,.2f} {result.unit} {result.extra}")
        after = machine(server)
    finally:
        server.stop()
    lines = report.aggregate(rounds, once)
    target_rows = report.targets(lines)
    runtime = time.perf_counter() - started
    text = report.table(lines, target_rows)
    print(text)
    loads = f"load before {before['load_1_5_15']}, after {after['load_1_5_15']}"
    print(f"\n{sizes.rounds} rounds, medians; {runtime:.0f} s; {loads}")
    document = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": quick(),
        "runtime_s": runtime,
        "machine": {**before, "load_after": after["load_1_5_15"]},
        "payload_bytes": size,
        "sizes": asdict(sizes),
        "rows": [asdict(line) for line in lines],
        "targets": target_rows,
        "rounds": [[asdict(r) for r in results] for results in rounds] + [[asdict(r) for r in once]],
        "table": text,
    }
    output = Path(os.environ.get("BENCH_OUTPUT") or RESULTS / "latest.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"written {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
