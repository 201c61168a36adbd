"""`make chaos` / `python -m chaos [scenario ...]`: run the scenarios, print the table, fail on any loss.

CHAOS_SCALE (default 1) scales job counts and durations; the table says which scale ran.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path

from chaos import flow, hostile, scenarios, topology, workflows
from chaos.harness import Row

SCENARIOS: dict[str, Callable[[float], Row]] = {
    "baseline": scenarios.baseline,
    "kill-storm": scenarios.kill_storm,
    "pool-kill-storm": scenarios.pool_kill_storm,
    "pool-horse-kills": scenarios.pool_horse_storm,
    "async-kill-storm": scenarios.async_kill_storm,
    "crash-1-queue": partial(scenarios.crash_after_claim, queues="default"),
    "crash-3-queues": partial(scenarios.crash_after_claim, queues="high,default,low"),
    "sigterm-storm": scenarios.sigterm_storm,
    "redis-restart": scenarios.redis_restart,
    "connection-cuts": scenarios.connection_cuts,
    "redis-full": scenarios.redis_full,
    "frozen-worker": hostile.frozen_worker,
    "skewed-clocks": hostile.skewed_clocks,
    "corrupt-fields": hostile.corrupt_fields,
    "huge-batch": hostile.huge_batch,
    "limits-storm": flow.kill_storm_with_limits,
    "workflow-storm": workflows.kill_storm_in_a_group,
    "sentinel-failover": topology.sentinel_failover,
    "sentinel-failover-no-ack": topology.sentinel_failover_no_ack,
    "sentinel-freeze-wait": topology.sentinel_freeze_wait,
    "partition-60s": topology.partition_60s,
}
#: Run only when named: `python -m chaos sentinel-freeze`.
EXTRA: dict[str, Callable[[float], Row]] = {
    "sentinel-freeze": topology.sentinel_freeze,
}
RESULTS = Path(__file__).resolve().parent / "results"


def table(rows: list[Row]) -> str:
    header = ("scenario", "jobs", "kills", "lost", "duplicates", "recovery s", "result", "notes")
    lines = [header]
    for row in rows:
        recovery = "-" if row.recovery is None else f"{row.recovery:.1f}"
        verdict = "skipped" if row.skipped else "pass" if row.passed else "FAIL: " + "; ".join(row.failures)
        lines.append(
            (
                row.scenario,
                str(row.jobs),
                str(row.kills),
                str(row.lost),
                str(row.duplicates),
                recovery,
                verdict,
                row.note,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    known = {**SCENARIOS, **EXTRA}
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    scale = float(os.environ.get("CHAOS_SCALE", "1"))
    started = time.monotonic()
    rows = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.append(known[name](scale))
    elapsed = time.monotonic() - started
    print(table(rows))
    print(f"\nscale {scale:g}; {elapsed:.0f} s in all; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    RESULTS.mkdir(exist_ok=True)
    report = {"scale": scale, "seconds": round(elapsed, 1), "rows": [asdict(row) for row in rows]}
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2))
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
