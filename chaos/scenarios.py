"""The seven scenarios of issue 4, issue 17's storms on pool mode and issue 13's on `--concurrency`
workers. Each returns a Row; each cleans up after itself."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable

from app.infrastructure.queue.errors import QueueError, QueueFullError
from app.infrastructure.queue.port import JobRequest
from chaos.harness import Fleet, Row, Run, direct_children
from chaos.proxy import CuttingProxy

FINISH_WITHIN = 180.0


def baseline(scale: float) -> Row:
    """5,000 jobs, 2 worker processes (inline mode: fork mode is in the storms), nothing breaks."""
    run = Run()
    try:
        run.enqueue_batches(run.producer(), int(5000 * scale))
        fleet = run.fleet(2, "--mode", "inline")
        took = run.wait_final(FINISH_WITHIN)
        fleet.stop()
        return run.account(Row("1 baseline", 0, note=f"drained in {took:.1f} s"))
    finally:
        run.close()


def kill_storm(scale: float) -> Row:
    """SIGKILL a worker and its work horse every ~2 s, and restart it."""
    return _storm_row("2 kill storm", "kill", int(2000 * scale), every=2.0, length=20.0 * scale)


def pool_kill_storm(scale: float) -> Row:
    """Issue 17: the kill storm on pool-mode workers (a worker and its long-lived horse, SIGKILLed)."""
    return _storm_row(
        "2b kill storm, pool mode", "kill", int(2000 * scale), every=2.0, length=20.0 * scale, mode="pool"
    )


def pool_horse_storm(scale: float) -> Row:
    """Only the long-lived horses are SIGKILLed (the OOM killer's choice): the workers go on."""
    jobs, length = int(2000 * scale), 20.0 * scale
    return _storm_row("2c horse kills, pool mode", "kill_horses", jobs, every=1.0, length=length, mode="pool")


def async_kill_storm(scale: float) -> Row:
    """Issue 13: the kill storm on `--concurrency 20` workers running `async def` jobs: each
    SIGKILL takes up to 20 running jobs (and those claimed ahead) down at once."""
    concurrency = 20
    return _storm_row(
        "2d kill storm, --concurrency 20",
        "kill",
        int(1500 * scale),
        every=2.0,
        length=10.0 * scale,
        args=("--concurrency", str(concurrency)),
        job=("record_async", 0.2),  # 2 workers x 20 at once: ~8 s of work, all of it under the storm
        # A kill loses the outcomes of the jobs in flight (running, or being recorded): those that
        # had done their work run again. At most the running ones and one ahead each, per kill.
        per_kill=concurrency + concurrency // 2,
    )


def crash_after_claim(scale: float, queues: str) -> Row:
    """Workers that die (os._exit) right after claiming a job, before running it: 5% of claims."""
    run = Run()
    try:
        priorities = ("high", "default", "low") if "," in queues else ("default",)
        run.enqueue_batches(run.producer(), int(600 * scale), priorities=priorities)
        fleet = run.fleet(2, "--queues", queues, env={"TASKQ_TEST_CRASH_AFTER_CLAIM": "0.05"})
        started = time.monotonic()
        while (
            run.unfinished(run.queue_server.client(), limit=1) and time.monotonic() - started < FINISH_WITHIN
        ):
            fleet.revive()
            time.sleep(0.2)
        fleet.stop()
        name = f"3 crash after claim ({len(queues.split(','))} queue{'s' if ',' in queues else ''})"
        return run.account(Row(name, 0, kills=fleet.restarts, recovery=time.monotonic() - started))
    finally:
        run.close()


def sigterm_storm(scale: float) -> Row:
    """A rolling deploy: SIGTERM a worker every ~1.5 s; it finishes its job and is started again."""
    return _storm_row("4 SIGTERM storm", "terminate", int(1500 * scale), every=1.5, length=20.0 * scale)


def _storm_row(
    name: str,
    blow: str,
    jobs: int,
    every: float,
    length: float,
    mode: str = "fork",
    args: tuple[str, ...] | None = None,
    job: tuple[str, float] = ("record", 0.01),
    per_kill: int = 1,
) -> Row:
    """Strike the workers (`Fleet.kill` or `Fleet.terminate`, or only their horses) while they
    drain `jobs`, in `mode` (fork or pool).

    Duplicates are bounded by the kills (a job killed after its work, before its outcome was
    recorded, runs again); a warm SIGTERM finishes its job, so it may cause none.
    """
    run = Run()
    try:
        run.enqueue_batches(run.producer(), jobs, work=job[1], job_name=job[0])
        fleet = run.fleet(2, *(args if args is not None else ("--mode", mode)))
        strike = _horse_killer(fleet) if blow == "kill_horses" else getattr(fleet, blow)
        kills = _storm(run, strike, fleet, every=every, length=length)
        recovery = run.wait_final(FINISH_WITHIN)
        fleet.stop()
        row = run.account(Row(name, 0, kills=kills, recovery=recovery))
        bound = kills * per_kill if blow.startswith("kill") else 0
        if row.duplicates > bound:
            row.failures.append(f"{row.duplicates} duplicates > {bound} ({kills} {blow}s)")
        return row
    finally:
        run.close()


def redis_restart(scale: float) -> Row:
    """kill -9 the queue's Redis (AOF, appendfsync always) mid-run; restart it 1 s later."""
    run = Run("--appendonly", "yes", "--appendfsync", "always")
    try:
        fleet = run.fleet(2)
        producing = _Producer(run, run.producer())
        time.sleep(3.0 * max(scale, 0.5))
        run.queue_server.kill()
        time.sleep(1.0)
        run.queue_server.start()
        restarted = time.monotonic()
        resumed = _wait_ledger_growth(run, restarted, timeout=30.0)
        time.sleep(3.0 * max(scale, 0.5))
        producing.stop()
        run.wait_final(FINISH_WITHIN)
        fleet.stop()
        row = run.account(
            Row(
                "5 Redis kill -9 + AOF",
                0,
                kills=1,
                recovery=resumed,
                note=f"{producing.refused} enqueues refused while down",
            )
        )
        if resumed is None or resumed > 10:
            row.failures.append(f"workers resumed after {resumed} s (bound: 10 s)")
        return row
    finally:
        run.close()


def connection_cuts(scale: float) -> Row:
    """Every connection (producer and workers) cut by a TCP proxy every ~2 s."""
    run = Run()
    proxy = CuttingProxy(run.queue_server.port)
    try:
        fleet = run.fleet(2, url=proxy.url)
        producing = _Producer(run, run.producer(proxy.url))
        deadline = time.monotonic() + 16.0 * max(scale, 0.5)
        while time.monotonic() < deadline:
            time.sleep(2.0)
            proxy.cut()
        producing.stop()
        recovery = run.wait_final(FINISH_WITHIN)
        fleet.stop()
        return run.account(
            Row(
                "6 connection cuts",
                0,
                kills=proxy.cuts,
                recovery=recovery,
                note=f"{producing.refused} enqueues refused",
            )
        )
    finally:
        proxy.close()
        run.close()


def redis_full(scale: float) -> Row:
    """maxmemory + noeviction: producers get QueueFullError and nothing is half-written."""
    run = Run("--maxmemory", "4mb", "--maxmemory-policy", "noeviction")
    try:
        queue = run.producer()
        row = Row("7 Redis full (noeviction)", 0)
        full = _fill(run, queue, padding=os.urandom(10_000).hex(), limit=5000)  # incompressible
        if full is None:
            row.failures.append("Redis never refused an enqueue")
        batch = [
            JobRequest("record", {"token": f"b{i}", "pad": os.urandom(10_000).hex()}, job_id=f"batch-{i}")
            for i in range(10)
        ]
        try:
            queue.enqueue_many(batch)
            row.failures.append("a batch was accepted by a full Redis")
        except QueueFullError:
            pass
        row.failures += _half_written(run, expected=len(run.acknowledged))
        run.queue_server.client().config_set("maxmemory", "0")  # an operator adds memory: drain
        fleet = run.fleet(2, "--mode", "inline")
        row.recovery = run.wait_final(FINISH_WITHIN)
        fleet.stop()
        row.note = f"refused with: {type(full).__name__}" if full else ""
        return run.account(row)
    finally:
        run.close()


class _Producer:
    """Enqueues one job at a time in a thread; only acknowledged enqueues count."""

    def __init__(self, run: Run, queue: object, pause: float = 0.003) -> None:
        self.run, self.queue, self.pause = run, queue, pause
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            job_id = uuid.uuid4().hex
            try:
                self.queue.enqueue("record", {"token": job_id}, job_id=job_id)  # type: ignore[attr-defined]
                self.run.acknowledged.append(job_id)
            except QueueError:
                self.refused += 1
            self._stop.wait(self.pause)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _horse_killer(fleet: Fleet) -> Callable[[int], None]:
    """A strike that SIGKILLs the work horses of one worker (its forker's children), not the worker."""

    def strike(index: int) -> None:
        for forker in direct_children(fleet.processes[index].pid):
            for horse in direct_children(forker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(horse, signal.SIGKILL)

    return strike


def _storm(run: Run, strike: Callable[[int], None], fleet: object, every: float, length: float) -> int:
    strikes, deadline, index = 0, time.monotonic() + length, 0
    while time.monotonic() < deadline and run.unfinished(run.queue_server.client(), limit=1):
        time.sleep(every)
        strike(index % 2)
        strikes += 1
        index += 1
        time.sleep(0.3)
        fleet.revive()  # type: ignore[attr-defined]
    return strikes


def _wait_ledger_growth(run: Run, since: float, timeout: float) -> float | None:
    ledger = run.ledger_server.client()
    before = ledger.scard("done")
    while time.monotonic() - since < timeout:
        if ledger.scard("done") >= before + 10:  # jobs run after the restart, not ones that were running
            return time.monotonic() - since
        time.sleep(0.05)
    return None


def _fill(run: Run, queue: object, padding: str, limit: int) -> QueueError | None:
    for _ in range(limit):
        job_id = uuid.uuid4().hex
        try:
            queue.enqueue("record", {"token": job_id, "work": 0.0, "pad": padding}, job_id=job_id)  # type: ignore[attr-defined]
        except QueueFullError as exc:
            return exc
        run.acknowledged.append(job_id)
    return None


def _half_written(run: Run, expected: int) -> list[str]:
    """Every job hash is whole and queued; no hash exists that was not acknowledged."""
    client = run.queue_server.client()
    hashes = [key for key in client.scan_iter("rq:job:*", count=1000)]
    queued = set(client.lrange("rq:queue:default", 0, -1))
    problems = []
    if len(hashes) != expected:
        problems.append(f"{len(hashes)} job hashes for {expected} acknowledged enqueues")
    for key in hashes:
        fields = client.hmget(key, ["status", "data", "origin"])
        if None in fields or key.split(b":")[-1] not in queued:
            problems.append(f"half-written job {key.decode()}")
    return problems[:5]
