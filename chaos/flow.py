"""Row 15: the kill storm with limits in force. Limits live in Redis (slots, waiting lists, the
keys' ring), so a worker killed while holding a slot must not leak it, and no storm may let more
jobs run at once than the limit allows."""

from __future__ import annotations

import itertools

from chaos.harness import Row, Run
from chaos.scenarios import FINISH_WITHIN, _storm

LIMITS = "record=concurrency:2;concurrency_per_key:1"
KEYS = ("customer-a", "customer-b", "customer-c")


def kill_storm_with_limits(scale: float) -> Row:
    """SIGKILL a worker (and its work horse) every ~2 s while 3 workers drain keyed jobs under
    `concurrency:2` and `concurrency_per_key:1`."""
    run = Run()
    try:
        run.enqueue_batches(run.producer(), int(600 * scale), work=0.02, limit_keys=KEYS)
        fleet = run.fleet(3, env={"QUEUE_LIMITS": LIMITS})
        kills = _storm(run, fleet.kill, fleet, every=2.0, length=20.0 * scale)
        recovery = run.wait_final(FINISH_WITHIN)
        fleet.stop()
        row = run.account(Row("15 kill storm, limits in force", 0, kills=kills, recovery=recovery))
        at_once, per_key = _most_at_once(run)
        row.note = (f"max running {at_once}/2, per key {per_key}/1; " + row.note).rstrip("; ")
        if at_once > 2 or per_key > 1:
            row.failures.append(f"limits exceeded: {at_once} at once, {per_key} for one key")
        held = _slots_held(run)
        if held:
            row.failures.append(f"{held} slots still held at the end")
        if row.duplicates > kills:
            row.failures.append(f"{row.duplicates} duplicates > {kills} kills")
        return row
    finally:
        run.close()


def _most_at_once(run: Run) -> tuple[int, int]:
    """The most executions running at once, in all and for one key, from the ledger's spans.

    An execution killed before its end has no end in the ledger; it is counted as running for
    its whole work time after its start (it ran no longer), which can only overcount.
    """
    starts: dict[str, tuple[float, str]] = {}
    ends: dict[str, float] = {}
    for line in run.ledger_server.client().lrange("spans", 0, -1):
        execution, kind, moment, key = line.decode().split()
        if kind == "start":
            starts[execution] = (float(moment), key)
        else:
            ends[execution] = float(moment)
    spans = [(start, ends.get(execution, start + 0.02), key) for execution, (start, key) in starts.items()]
    by_key = [_overlap([s for s in spans if s[2] == key]) for key in KEYS]
    return _overlap(spans), max(by_key, default=0)


def _overlap(spans: list[tuple[float, float, str]]) -> int:
    events = sorted([(start, 1) for start, _, _ in spans] + [(end, -1) for _, end, _ in spans])
    return max(itertools.accumulate(step for _, step in events), default=0)


def _slots_held(run: Run) -> int:
    client = run.queue_server.client()
    return sum(int(client.zcard(key)) for key in client.scan_iter("taskq:slots:*", count=1000))
