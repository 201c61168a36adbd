"""Production topologies: Sentinel failovers, with and without replica acks; a partitioned host.

Each function takes the scale and returns a `Row`, like `scenarios.py`, and cleans up after
itself (servers and workers by pid, namespaces by name).
"""

from __future__ import annotations

import contextlib
import os
import time
import zlib
from dataclasses import replace

from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.connection import connect
from chaos import netns
from chaos.harness import Fleet, Row, Run, settings_for

# The scenarios' producer thread and ledger probe, shared rather than copied.
from chaos.scenarios import FINISH_WITHIN, _Producer, _wait_ledger_growth
from chaos.sentinel import SentinelTopology, TopologyError, wait_until
from chaos.servers import PrivateRedis

FAILOVERS = 5
#: Producers ride a failover out (detection after `down-after-milliseconds`, election,
#: promotion: ~3.3 s here with 2 s) when their bounded retry is longer than that.
PRODUCER_RETRY_SECONDS = 6.0
#: A resync starts at once instead of after the default 5 s (which batches replicas that ask
#: together): each failover round is shorter, nothing else changes.
DATA_ARGS = ("--repl-diskless-sync-delay", "0")
#: 2 s, not the harness's 1 s: on this 2-core box under load, sentinels with 1 s failed over on
#: their own twice in most runs (a live primary missed one PING deadline), and each such flap
#: lost acknowledged jobs even with `min-replicas-to-write 1` (see chaos/README.md). The count
#: of such failovers is in the note; `CHAOS_DOWN_AFTER_MS=1000` reproduces them.
DOWN_AFTER_MS = int(os.environ.get("CHAOS_DOWN_AFTER_MS", "2000"))
#: One WAIT's bound in the rows with replica acknowledgement: several tries fit in the retry.
WAIT_TIMEOUT_MS = 500


def sentinel_failover(scale: float) -> Row:
    """1 primary, 2 replicas, 3 sentinels, `min-replicas-to-write 1` and producers with
    `QUEUE_WAIT_REPLICAS=1`: SIGKILL the primary 5 times."""
    return _failovers("sentinel-failover", scale, min_replicas=(1, 10), freeze=False, wait_replicas=1)


def sentinel_failover_no_ack(scale: float) -> Row:
    """The control: no `min-replicas-to-write`; the primary frozen (SIGSTOP) until replaced, 5 times."""
    return _failovers("sentinel-failover-no-ack", scale, min_replicas=None, freeze=True, loss_expected=True)


def sentinel_freeze(scale: float) -> Row:
    """Opt-in (not in `make chaos`): the control's freezes with `min-replicas-to-write 1`.

    A measurement, not a proof: the frozen primary still runs, on thawing, the writes its clients
    had sent before it froze, before it notices that its replicas left; those few are lost.
    """
    return _failovers("sentinel-freeze", scale, min_replicas=(1, 10), freeze=True, loss_expected=True)


def sentinel_freeze_wait(scale: float) -> Row:
    """The freezes again, with `QUEUE_WAIT_REPLICAS=1`: what the thawed primary takes is never
    acknowledged by a replica, so its enqueue is retried on the new primary, where it lands."""
    return _failovers("sentinel-freeze-wait", scale, min_replicas=(1, 10), freeze=True, wait_replicas=1)


def _failovers(
    name: str,
    scale: float,
    min_replicas: tuple[int, int] | None,
    freeze: bool,
    loss_expected: bool = False,
    wait_replicas: int = 0,
) -> Row:
    topology = SentinelTopology(
        replicas=2, min_replicas=min_replicas, data_args=DATA_ARGS, down_after_ms=DOWN_AFTER_MS
    ).start()
    run = Run(queue_server=topology)
    try:
        settings = replace(
            run.settings,
            redis_retry_seconds=PRODUCER_RETRY_SECONDS,
            wait_replicas=wait_replicas,
            wait_timeout_ms=WAIT_TIMEOUT_MS,
        )
        producers = [_Producer(run, RQQueue(connect(settings), settings), pause=0.01) for _ in range(2)]
        fleet = run.fleet(2, "--mode", "inline")
        promotions, resumed = [], []
        for _ in range(FAILOVERS):
            time.sleep(2.0 * max(scale, 0.5))
            failover = topology.pause_failover() if freeze else topology.failover()
            promotions.append(failover.promoted)
            resumed.append(_wait_ledger_growth(run, failover.began, timeout=30.0))
            topology.rejoin(failover)
            fleet.revive()
        time.sleep(1.0)
        for producer in producers:
            producer.stop()
        run.wait_final(FINISH_WITHIN, vanished_final=True)  # a vanished job is lost: no waiting for it
        fleet.stop()
        refused = sum(producer.refused for producer in producers)
        unplanned = topology.sentinel_failovers() - topology.failovers
        row = run.account(Row(name, 0, kills=topology.failovers, loss_expected=loss_expected))
        row.recovery = None if None in resumed else max(r for r in resumed if r is not None)
        row.note = "; ".join(
            part
            for part in (
                _loss_note(run, row) if row.lost else "",
                f"promoted in {min(promotions):.1f}-{max(promotions):.1f} s",
                f"{refused} enqueues refused",
                f"{fleet.restarts} worker restarts" if fleet.restarts else "",
                f"{unplanned} more failovers the sentinels started on their own (a live primary missed "
                f"down-after-milliseconds {topology.down_after_ms})"
                if unplanned > 0
                else "",
                row.note,
            )
            if part
        )
        if None in resumed:
            row.failures.append("workers did not resume after a failover within 30 s")
        if not freeze and row.duplicates > topology.failovers:
            row.failures.append(f"{row.duplicates} duplicates > {topology.failovers} failovers")
        return row
    finally:
        run.close()


def _loss_note(run: Run, row: Row) -> str:
    ran = sum(1 for _job_id, executions in run.lost if executions)
    share = 100.0 * row.lost / max(row.jobs, 1)
    return (
        f"LOST {row.lost} acknowledged jobs ({share:.1f}%): {row.lost - ran} never ran, "
        f"{ran} ran but their record vanished"
    )


def partition_60s(scale: float) -> Row:
    """Redis and the ledger on one simulated host, 2 workers on another: their link is cut for 60 s.

    A third worker on the Redis host keeps working and runs the reaper, which takes back the
    jobs the cut-off workers were running once their heartbeats stop. After the heal the two
    must go on by themselves.
    """
    name = "partition-60s"
    check = netns.available()
    if not check:
        return Row(name, 0, skipped=True, note=f"skipped: {check.reason}")
    length = 60.0 * scale
    with netns.Network() as network:
        near_host, far_host = network.host("redis"), network.host("workers")
        on_near = {"host": near_host.address, "prefix": near_host.exec_prefix(), "unix_socket": True}
        queue_server = PrivateRedis("--appendonly", "yes", "--appendfsync", "everysec", **on_near).start()
        run = Run(queue_server=queue_server, ledger_server=PrivateRedis(**on_near).start())
        try:
            # The harness lives outside the namespaces: it enqueues and reads over the unix socket.
            local = settings_for(f"unix://{queue_server.socket_path}?db=0")
            producer_queue = RQQueue(connect(local), local)
            run.enqueue_batches(producer_queue, int(400 * max(scale, 0.25)), work=0.05)
            far = run.fleet(2, prefix=far_host.exec_prefix())
            near = run.fleet(1, prefix=near_host.exec_prefix())
            producing = _Producer(run, producer_queue, pause=0.05)
            far_done = _FarWorkers(run, far)
            wait_until(lambda: far_done.count() >= 20, 30.0, "the far workers run jobs")
            network.cut(far_host)
            time.sleep(length)
            before = far_done.count()
            network.heal(far_host)
            healed = time.monotonic()
            resumed: float | None = None
            with contextlib.suppress(TopologyError):
                wait_until(lambda: far_done.count() > before, 60.0, "the far workers resume", every=0.2)
                resumed = time.monotonic() - healed
            time.sleep(2.0)
            producing.stop()
            run.wait_final(FINISH_WITHIN)
            far.stop()
            near.stop()
            row = run.account(Row(name, 0, kills=1, recovery=resumed))
            row.note = "; ".join(
                part
                for part in (
                    f"cut {length:.0f} s",
                    f"{far_done.reaped()} jobs reaped from the cut-off workers",
                    f"{producing.refused} enqueues refused",
                    row.note,
                )
                if part
            )
            if resumed is None:
                row.failures.append("the cut-off workers ran nothing within 60 s of the heal")
            if run.unfinished(queue_server.client(), limit=1):
                row.failures.append("jobs not final")
            return row
        finally:
            run.close()


class _FarWorkers:
    """What the cut-off workers did, read from their rq worker hashes (by pid) and the jobs."""

    def __init__(self, run: Run, fleet: Fleet) -> None:
        self.run, self.fleet = run, fleet

    def keys(self) -> list[bytes]:
        pids = {f".{process.pid}." for process in self.fleet.processes}
        members = self.run.queue_server.client().smembers("rq:workers")
        return [key for key in members if any(pid in key.decode() for pid in pids)]

    def count(self) -> int:
        """Jobs the cut-off workers have finished (their counters, written with each heartbeat)."""
        client = self.run.queue_server.client()
        return sum(int(client.hget(key, "successful_job_count") or 0) for key in self.keys())

    def reaped(self) -> int:
        """Acknowledged jobs that the reaper took back at least once (their last error says so)."""
        client = self.run.queue_server.client()
        reaped = 0
        for start in range(0, len(self.run.acknowledged), 1000):
            chunk = self.run.acknowledged[start : start + 1000]
            with client.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.hget(f"rq:job:{job_id}", "exc_info")
                for blob in pipe.execute():
                    reaped += bool(blob) and b"AbandonedJobError" in _inflate(blob)
        return reaped


def _inflate(blob: bytes) -> bytes:
    try:
        return zlib.decompress(blob)
    except zlib.error:
        return blob
