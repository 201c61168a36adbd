"""`make bench-scaling` / `python -m bench.scaling`: the scaling curve of one Redis (issue 17).

N queued `add` jobs drained by 1, 2, 4 and 8 worker processes (one `--processes P` supervisor),
inline and pool mode, on one private redis-server; for each run the rate (from start, and from
the first finished job on) and Redis's own CPU per job (INFO cpu, user + system, over the run):
Redis is single-threaded, so 1 / (its CPU per job) is what one Redis can carry at best. The runs
take turns (inline and pool alternate, the process counts rotate) and repeat `rounds` times;
figures are medians. Separate from `make bench`, which it would push past ten minutes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

import redis

from bench import drain
from bench.common import Ctx, Sizes, quick
from bench.procs import Procs, wait_until
from bench.redis_server import PrivateRedis

PROCESSES = (1, 2, 4, 8)
MODES = ("inline", "pool")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Point:
    """One run: `processes` workers of `mode` draining `jobs`."""

    mode: str
    processes: int
    jobs: int
    jobs_s: float
    steady_jobs_s: float
    redis_us_per_job: float
    redis_core_share: float  # Redis's CPU seconds / wall seconds of the run: 1.0 is one core, full


def redis_cpu(conn: redis.Redis) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_point(ctx: Ctx, mode: str, processes: int, jobs: int) -> Point:
    ctx.server.wipe()
    drain.fill_taskq(ctx, jobs)
    conn = ctx.client()
    cpu0, started = redis_cpu(conn), time.perf_counter()
    procs = Procs(f"scaling_{mode}_{processes}", drain.taskq_commands(mode, processes), ctx.env(), ctx.logs)
    try:
        first = wait_until(lambda: drain.finished(conn) >= 1, timeout=120, procs=procs, poll=0.002)
        rest = wait_until(lambda: drain.finished(conn) >= jobs, timeout=600, procs=procs, poll=0.01)
        wall, cpu = time.perf_counter() - started, redis_cpu(conn) - cpu0
        procs.wait_exit(10)
    finally:
        procs.stop()
    steady = (jobs - 1) / rest
    return Point(mode, processes, jobs, jobs / (first + rest), steady, cpu / jobs * 1e6, cpu / wall)


def table(points: list[Point]) -> str:
    head = ("mode", "processes", "jobs/s", "steady jobs/s", "Redis CPU us/job", "Redis core busy")
    rows = [(*head, "one Redis carries")]
    for p in points:
        carries = 1e6 / p.redis_us_per_job if p.redis_us_per_job else float("nan")
        rows.append(
            (
                p.mode, str(p.processes), f"{p.jobs_s:,.0f}", f"{p.steady_jobs_s:,.0f}",
                f"{p.redis_us_per_job:.0f}", f"{p.redis_core_share:.0%}", f"~{carries:,.0f} jobs/s",
            )
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def medians(runs: list[Point]) -> list[Point]:
    out = []
    for mode in MODES:
        for processes in PROCESSES:
            same = [p for p in runs if (p.mode, p.processes) == (mode, processes)]
            out.append(
                Point(
                    mode, processes, same[0].jobs, median(p.jobs_s for p in same),
                    median(p.steady_jobs_s for p in same), median(p.redis_us_per_job for p in same),
                    median(p.redis_core_share for p in same),
                )
            )  # fmt: skip
    return out


def main() -> int:
    jobs = int(os.environ.get("BENCH_SCALING_JOBS") or (1500 if quick() else 12_000))
    rounds = int(os.environ.get("BENCH_SCALING_ROUNDS") or (1 if quick() else 2))
    server = PrivateRedis().start()
    started, runs = time.perf_counter(), []
    try:
        ctx = Ctx(server, Sizes.from_env(), RESULTS / "logs")
        load = os.getloadavg()
        for round_no in range(rounds):
            counts = PROCESSES[round_no % 4 :] + PROCESSES[: round_no % 4]
            for processes in counts:
                for mode in MODES if round_no % 2 == 0 else MODES[::-1]:
                    runs.append(point := run_point(ctx, mode, processes, jobs))
                    print(f"  {mode:6} {processes}p {point.steady_jobs_s:8,.0f} jobs/s", file=sys.stderr)
    finally:
        server.stop()
    result = medians(runs)
    text = table(result)
    took = time.perf_counter() - started
    loads = f"load {load[0]:.1f} -> {os.getloadavg()[0]:.1f}"
    print(text + f"\n\n{rounds} rounds, medians; {jobs:,} jobs a run; {took:.0f} s; {loads}")
    document = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_before_after": [load[0], os.getloadavg()[0]],
        "points": [asdict(p) for p in result],
        "runs": [asdict(p) for p in runs],
        "table": text,
    }
    output = Path(os.environ.get("BENCH_SCALING_OUTPUT") or RESULTS / "scaling.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
