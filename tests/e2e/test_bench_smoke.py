"""`BENCH_QUICK=1 python -m bench` runs end to end and writes every row (issue 7).

A smoke test of the harness only: it checks the JSON's shape and that every figure is a positive
number. No timing is asserted; the figures of a quick run mean nothing. It starts its own private
redis-server, like `make bench`, and takes about 25 s.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "enqueue": {
        "taskq enqueue",
        "taskq enqueue (signed)",
        "taskq enqueue (typed params)",
        "rq Queue.enqueue",
        "redis RPUSH",
    },
    "bulk": {"taskq enqueue_many", "taskq enqueue_many (signed)", "rq enqueue_many", "pipelined RPUSH"},
    "drain 1p": {"taskq fork", "taskq pool", "taskq inline", "rq Worker", "rq SimpleWorker"},
    "drain 2p": {"taskq fork", "taskq pool", "taskq inline", "rq Worker", "rq SimpleWorker"},
    "latency": {"taskq inline", "taskq fork", "taskq pool", "rq SimpleWorker", "rq Worker"},
    "memory": {"taskq inline", "taskq pool"},
    "job bytes": {"taskq", "taskq (signed)", "rq Queue.enqueue"},
    "drain limits": {"taskq inline", "taskq inline, concurrency:64", "taskq inline, per key (100 keys)"},
    "replicated": {"taskq enqueue", "taskq enqueue, WAIT 1 replica"},  # issue 16's row
    "drain group": {"taskq inline", "taskq inline, one group"},
}
# The peers are the `bench` extra: `make bench` installs them, `make test` may not.
PEERS = {name for name in ("huey", "dramatiq") if importlib.util.find_spec(name) is not None}
#: The asyncio rows (issue 13): taskq always, each async peer where it is installed.
ASYNC_PEERS = {
    "arq": ("arq", "arq enqueue_job"),
    "saq": ("saq", "saq enqueue"),
    "taskiq_redis": ("taskiq", "taskiq kiq"),
}


@pytest.mark.timeout(330)  # ~100 s alone; more beside the other tests (`make test` runs two at once)
def test_quick_bench_writes_every_row_with_positive_figures(tmp_path):
    output = tmp_path / "latest.json"
    env = {**os.environ, "BENCH_QUICK": "1", "BENCH_OUTPUT": str(output)}
    done = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(output.read_text())

    expected = {row: set(names) for row, names in EXPECTED.items()}
    expected["latency"] |= PEERS
    if PEERS:
        expected["peers enqueue"] = set(PEERS)
        expected["peers drain"] = set(PEERS)
    expected["io drain"] = {"taskq --concurrency 100"}
    expected["async enqueue"] = {"taskq AsyncRQQueue.enqueue"}
    for module, (drain_name, enqueue_name) in ASYNC_PEERS.items():
        if importlib.util.find_spec(module) is not None:
            expected["io drain"].add(drain_name)
            expected["async enqueue"].add(enqueue_name)
    found: dict[str, set[str]] = {}
    for line in document["rows"]:
        found.setdefault(line["row"], set()).add(line["contender"])
        if line["row"] == "memory":  # growth may be 0 or negative; the readings may not
            assert line["extra"]["before_mib"] > 0 and line["extra"]["after_mib"] > 0, line
        else:
            assert line["value"] > 0, line
        for name, value in line["extra"].items():
            assert value > 0 or name == "startup_s", (name, line)
    assert found == expected

    # Without the peers, the "fastest peer" targets cannot be measured; every other one is.
    every_peer = PEERS and all(importlib.util.find_spec(module) for module in ASYNC_PEERS)
    statuses = {"met", "missed"} | (set() if every_peer else {"not measured"})
    assert document["targets"] and all(t["status"] in statuses for t in document["targets"])
    assert document["machine"]["redis"] and document["payload_bytes"] > 0
    assert "| row " in done.stdout  # the table was printed


@pytest.mark.timeout(200)
def test_quick_scaling_curve_writes_every_point(tmp_path):
    output = tmp_path / "scaling.json"
    env = {**os.environ, "BENCH_QUICK": "1", "BENCH_SCALING_JOBS": "300"}
    env["BENCH_SCALING_OUTPUT"] = str(output)
    command = [sys.executable, "-m", "bench.scaling"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=190)
    assert done.returncode == 0, done.stderr[-3000:]
    points = json.loads(output.read_text())["points"]
    assert {(p["mode"], p["processes"]) for p in points} == {
        (mode, n) for mode in ("inline", "pool") for n in (1, 2, 4, 8)
    }
    assert all(p["jobs_s"] > 0 and p["redis_us_per_job"] > 0 for p in points)
