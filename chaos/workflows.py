"""Row 16: the kill storm during a 2,000-child group (issue 14). A group's counters and members
live in Redis and change in the scripts that end its children, so a worker killed between "child
done" and "callback enqueued" can neither lose the callback nor enqueue it twice."""

from __future__ import annotations

import time
import uuid

from app.infrastructure.queue.port import JobRequest
from chaos.harness import Row, Run
from chaos.scenarios import FINISH_WITHIN, _storm


def kill_storm_in_a_group(scale: float) -> Row:
    """SIGKILL a worker (and its horse) every ~2 s while 2 workers drain the children of one group,
    whose `on_complete` callback is a ledger job: it must run exactly once, after every child."""
    run = Run()
    try:
        queue = run.producer()
        ids = [uuid.uuid4().hex for _ in range(int(2000 * scale))]
        callback = uuid.uuid4().hex
        children = [JobRequest("record", {"token": i, "work": 0.01}, job_id=i) for i in ids]
        gid = queue.group(
            children,
            policy="continue",  # a child failed after its retries is listed; the callback runs all the same
            on_complete=JobRequest("record", {"token": callback}, job_id=callback),
            results_param=None,
        )
        run.acknowledged += ids
        fleet = run.fleet(2, "--mode", "fork")
        kills = _storm(run, fleet.kill, fleet, every=2.0, length=20.0 * scale)
        recovery = run.wait_final(FINISH_WITHIN)
        ran = _callback_runs(run, callback, timeout=60.0)
        fleet.stop()
        row = run.account(Row("16 kill storm, 2,000-child group", 0, kills=kills, recovery=recovery))
        view = queue.workflow(gid)
        row.note = (f"callback ran {ran}x; group {view.state}, {view.finished} finished; " + row.note).rstrip(
            "; "
        )
        if ran != 1:
            row.failures.append(f"the callback ran {ran} times, not once")
        if not view.is_final or view.settled != len(ids):
            row.failures.append(f"group not over: {view.settled}/{len(ids)} settled, {view.state}")
        leftovers = run.queue_server.client().hlen("taskq:wf-index")
        if leftovers:
            row.failures.append(f"{leftovers} members still indexed")
        if row.duplicates > kills:
            row.failures.append(f"{row.duplicates} duplicates > {kills} kills")
        return row
    finally:
        run.close()


def _callback_runs(run: Run, callback: str, timeout: float) -> int:
    """How often the ledger saw the callback run, once it has finished (bounded wait)."""
    client, ledger = run.queue_server.client(), run.ledger_server.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and client.hget(f"rq:job:{callback}", "status") != b"finished":
        time.sleep(0.2)
    time.sleep(1.0)  # a second run, if there were one, would have started by now
    return int(ledger.get(f"exec:{callback}") or 0)
