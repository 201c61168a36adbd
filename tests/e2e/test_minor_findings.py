"""Issue 19 item 6: a worker without the signing key says so; a killed worker is shown as not
seen; the metrics port's listening socket is not inherited by the forker and the work horses."""

from __future__ import annotations

import os
import re
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.serialization import make_serializer
from chaos.harness import descendants
from chaos.servers import free_port
from tests.support.inprocess import drain
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.e2e


def test_a_worker_without_the_signing_key_says_that_it_is_missing(settings, r):
    """Data signed inside its payload (meta, results, jobs of producers before the tag field)."""
    signed = replace(settings, signing_key=b"k" * 32)
    job_id = RQQueue(r, signed).enqueue("add", {"a": 1, "b": 2})
    key = f"rq:job:{job_id}"
    call = make_serializer("pickle", b"k" * 32).dumps(("tests.support.jobs.add", None, (), {"a": 1, "b": 2}))
    r.hset(key, "data", call)
    r.hdel(key, "taskq_sig")
    drain(settings, r)  # this worker has no key
    error = RQQueue(r, signed).get(job_id).error
    assert "job data is signed, but QUEUE_SIGNING_KEY is not set here" in error, error
    assert "UnpicklingError" not in error


def test_a_killed_worker_is_not_seen_rather_than_busy(taskq, settings, r):
    queue = RQQueue(r, settings)
    slow = queue.enqueue("sleep", {"seconds": 60})
    worker = WorkerProcess(settings, name="to-be-killed").start()
    wait_until(lambda: queue.get(slow).status.value == "started", what="the job to start")
    tree = [worker.pid, *descendants(worker.pid)]
    for signum in (signal.SIGSTOP, signal.SIGKILL):
        for pid in tree:
            os.kill(pid, signum)
    worker.stop()

    def row() -> str | None:
        table = taskq("info").out
        line = next((line for line in table.splitlines() if "to-be-killed" in line), "")
        return line if "not seen for" in line else None

    assert "busy" not in wait_until(row, timeout=30, interval=0.2, what="the worker to be shown as not seen")
    (shown,) = [w for w in taskq("info", "--json").json()["workers"] if w["name"] == "to-be-killed"]
    assert shown["stale"] is True


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def listening_inode(port: int) -> str:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
            return fields[9]
    raise AssertionError(f"nothing listens on {port}")


def test_the_metrics_socket_stays_in_the_worker(settings, r):
    queue = RQQueue(r, settings)
    port = free_port()
    slow = queue.enqueue("sleep", {"seconds": 30})
    with WorkerProcess(settings, "--metrics-port", str(port)) as worker:
        wait_until(lambda: queue.get(slow).status.value == "started", what="the job to start")
        inode = listening_inode(port)
        assert inode in socket_inodes(worker.pid)
        # The forker and the horse running the job (forked once the job is claimed, if none waits).
        children = wait_until(
            lambda: found if len(found := descendants(worker.pid)) >= 2 else None,
            what="the forker and the work horse",
        )
        for child in children:
            assert inode not in socket_inodes(child), f"process {child} holds the metrics socket"
        queue.stop(slow)
    assert re.fullmatch(r"\d+", inode)
