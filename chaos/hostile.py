"""Scenarios of issue 20: hostile and unlucky conditions. Each returns a Row and cleans up.

- frozen worker: SIGSTOP past its heartbeat deadline, then SIGCONT: its late outcomes must not
  overwrite the newer run's (the registries agree with every job's status at the end);
- skewed clocks: workers an hour ahead and 30 s behind: no job twice without a failure, none early;
- corrupt fields: hand-written garbage in jobs and keys: no worker exits, the rest runs;
- huge batch: one `enqueue_many` of 200,000 jobs: no other client sees BUSY, a retry adds nothing.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid

import redis

from app.infrastructure.queue.port import JobRequest
from chaos.harness import Row, Run

FINISH_WITHIN = 180.0
HEARTBEAT_TTL = 3 * 1 + 5  # WORKER_HEARTBEAT_INTERVAL=1 in the fleet: 3 x 1 s + 5 s


def frozen_worker(scale: float) -> Row:
    """Freeze a worker (SIGSTOP) past its heartbeat deadline while it runs jobs, then let it go on."""
    run = Run()
    try:
        run.enqueue_batches(run.producer(), int(600 * scale), work=0.05)
        fleet = run.fleet(2)
        freezes, deadline = 0, time.monotonic() + 40 * max(scale, 0.5)
        while time.monotonic() < deadline and run.unfinished(run.queue_server.client(), limit=1):
            fleet.signal(freezes % 2, signal.SIGSTOP)
            time.sleep(HEARTBEAT_TTL + 4)  # past the deadline, and the other worker's upkeep
            fleet.signal(freezes % 2, signal.SIGCONT)
            freezes += 1
            time.sleep(1.0)
        recovery = run.wait_final(FINISH_WITHIN)
        fleet.stop()
        row = run.account(Row("8 frozen worker (SIGSTOP past TTL)", 0, kills=freezes, recovery=recovery))
        row.failures += _registries_disagree(run)
        if row.duplicates > freezes:
            row.failures.append(f"{row.duplicates} duplicates > {freezes} freezes")
        return row
    finally:
        run.close()


def skewed_clocks(scale: float) -> Row:
    """One worker's clock an hour ahead, one's 30 s behind, and delayed jobs among the rest."""
    run = Run()
    try:
        producer = run.producer()
        run.enqueue_batches(producer, int(1000 * scale), work=0.02)
        due = time.time() + 15
        for _ in range(int(50 * max(scale, 0.2))):
            job_id = uuid.uuid4().hex
            producer.enqueue("record", {"token": job_id, "not_before": due}, job_id=job_id, delay=15)
            run.acknowledged.append(job_id)
        ahead = run.fleet(1, env={"TASKQ_TEST_CLOCK_SKEW": "3600"})
        behind = run.fleet(1, env={"TASKQ_TEST_CLOCK_SKEW": "-30"})
        recovery = run.wait_final(FINISH_WITHIN)
        ahead.stop()
        behind.stop()
        row = run.account(Row("9 skewed clocks (+1 h, -30 s)", 0, recovery=recovery))
        early = int(run.ledger_server.client().get("early") or 0)
        row.note = f"{early} early"
        if early or row.duplicates:
            row.failures.append(f"{early} jobs ran early, {row.duplicates} ran twice without a failure")
        return row
    finally:
        run.close()


def corrupt_fields(scale: float) -> Row:
    """Garbage written by hand into jobs (and a key of the wrong type): no worker may exit."""
    run = Run()
    try:
        producer = run.producer()
        client = run.queue_server.client()
        run.enqueue_batches(producer, int(1000 * scale), work=0.0)
        corrupted = _plant_garbage(run, client, int(100 * max(scale, 0.3)))
        fleet = run.fleet(2)
        recovery = run.wait_final(FINISH_WITHIN)
        alive = fleet.alive()
        fleet.stop()
        row = run.account(Row("10 corrupt fields", 0, recovery=recovery))
        row.note = (f"{corrupted} corrupted; " + row.note).rstrip("; ")
        if alive != 2:
            row.failures.append(f"{2 - alive} worker(s) exited")
        return row
    finally:
        run.close()


def huge_batch(scale: float) -> Row:
    """One enqueue_many of 200,000 jobs while another client PINGs; then the same batch again."""
    run = Run("--busy-reply-threshold", "100")
    try:
        count = int(200_000 * scale)
        ids = [uuid.uuid4().hex for _ in range(count)]
        requests = [JobRequest("record", {"token": job_id}, job_id=job_id) for job_id in ids]
        busy, stop = [0], threading.Event()
        pinger = threading.Thread(target=_ping, args=(run.queue_server.client(), busy, stop), daemon=True)
        pinger.start()
        started = time.monotonic()
        producer = run.producer()
        producer.enqueue_many(requests)
        took = time.monotonic() - started
        stop.set()
        pinger.join(timeout=10)
        producer.enqueue_many(requests)  # a retry of the same batch (same ids): adds nothing
        client = run.queue_server.client()
        queued, hashes = client.llen("rq:queue:default"), client.dbsize()
        row = Row("11 huge batch (200,000 jobs)", count, lost=count - queued, note=f"written in {took:.1f} s")
        if busy[0]:
            row.failures.append(f"{busy[0]} BUSY replies to another client")
        if queued != count:
            row.failures.append(f"{queued} queued for {count} jobs after the retry")
        row.note += f"; {hashes} keys"
        return row
    finally:
        run.close()


def _ping(client: redis.Redis, busy: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            client.ping()
        except redis.exceptions.ResponseError as exc:
            busy[0] += "BUSY" in str(exc)
        except redis.exceptions.BusyLoadingError:
            busy[0] += 1


def _plant_garbage(run: Run, client: redis.Redis, count: int) -> int:
    garbage = [
        {"retry_intervals": "{"},
        {"retry_intervals": "[1e999]"},
        {"timeout": "99999999999999999999"},
        {"data": "\x80\x05garbage"},
        {"result_ttl": "-1"},
        {"status": "weird"},
    ]
    producer = run.producer()
    for index in range(count):
        job_id = uuid.uuid4().hex
        producer.enqueue("record", {"token": job_id}, job_id=job_id, retry=1)
        client.hset(f"rq:job:{job_id}", mapping=garbage[index % len(garbage)])
        if garbage[index % len(garbage)].get("status") != "weird":  # a weird status is never claimed
            run.acknowledged.append(job_id)
    client.set("rq:wip:low", "not a sorted set")  # a queue no job of the run uses: skipped, named
    return count


def _registries_disagree(run: Run) -> list[str]:
    """Every job is in the registry of its status (finished or failed), and in no other."""
    client = run.queue_server.client()
    wrong = 0
    for job_id in run.acknowledged:
        status = client.hget(f"rq:job:{job_id}", "status")
        finished = client.zscore("rq:finished:default", job_id) is not None
        failed = client.zscore("rq:failed:default", job_id) is not None
        wrong += (status == b"finished") != finished or (status == b"failed") != failed
    return [f"{wrong} jobs whose registries disagree with their status"] if wrong else []
