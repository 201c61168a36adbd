"""Issue 19 item 1: rq's own tools are not read-only; taskq's state survives them.

`rq info`, rq's registry reads (`count`, `get_job_ids()`) and rq-dashboard run rq's cleanup,
which fails or retries abandoned executions with rq's rules and never settles a dependent. Our
executions are out of its reach (scored by minus their deadline); whatever rq did move anyway
(an execution written the rq way) is settled by our reaper: the dependent is canceled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry

from app.infrastructure.queue.rq_queue import RQQueue
from chaos.harness import descendants
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration
RQ = Path(sys.executable).parent / "rq"


def killed_mid_job(settings, r):
    """A parent job running on a worker that is then SIGKILLed (with its horse), and a dependent."""
    queue = RQQueue(r, settings)
    parent = queue.enqueue("sleep", {"seconds": 60}, retry=0)
    child = queue.enqueue("add", {"a": 1, "b": 1}, depends_on=parent)
    worker = WorkerProcess(settings).start()
    wait_until(lambda: queue.get(parent).status.value == "started", what="the parent to start")
    tree = [worker.pid, *descendants(worker.pid)]
    for signum in (signal.SIGSTOP, signal.SIGKILL):  # frozen first: nobody records anything
        for pid in tree:
            os.kill(pid, signum)
    worker.stop()
    (entry,) = r.zrange("rq:wip:default", 0, -1)
    # Its heartbeat deadline (however it is scored) is past: rq's cleanup would take it now.
    wait_until(lambda: abs(r.zscore("rq:wip:default", entry)) < time.time(), timeout=30, what="its deadline")
    return queue, parent, child, entry


def rq_reads_everything(settings, r) -> None:
    """What an operator runs out of habit: rq's CLI and rq's own registry reads."""
    info = subprocess.run(
        [str(RQ), "info", "-u", settings.redis_url], capture_output=True, text=True, timeout=60
    )
    assert info.returncode == 0, info.stderr
    rq_queue = Queue("default", connection=r)
    StartedJobRegistry(queue=rq_queue).get_job_ids()
    assert StartedJobRegistry(queue=rq_queue).count == len(r.zrange("rq:wip:default", 0, -1))
    FailedJobRegistry(queue=rq_queue).count  # noqa: B018


def test_rq_info_and_registry_reads_leave_an_abandoned_job_to_our_reaper(settings, r):
    queue, parent, child, entry = killed_mid_job(settings, r)
    rq_reads_everything(settings, r)
    assert Job.fetch(parent, connection=r).get_status() == "started"  # rq did not take it
    assert r.zrange("rq:wip:default", 0, -1) == [entry]
    with WorkerProcess(settings):
        assert queue.wait(child, timeout=30).status.value == "canceled"
    assert "AbandonedJobError" in queue.get(parent).error


def test_a_job_rq_failed_anyway_has_its_dependent_settled_by_our_reaper(settings, r):
    queue, parent, child, entry = killed_mid_job(settings, r)
    r.zadd("rq:wip:default", {entry: time.time() - 1})  # as rq (or an older taskq) registers it
    StartedJobRegistry(queue=Queue("default", connection=r)).get_job_ids()  # rq's cleanup runs
    assert queue.get(parent).status.value == "failed" and "AbandonedJobError" in queue.get(parent).error
    assert queue.get(child).status.value == "deferred"  # rq leaves it waiting forever
    with WorkerProcess(settings) as worker:
        view = queue.wait(child, timeout=30)
    assert view.status.value == "canceled"
    assert "job canceled" in worker.communicate() and "outside taskq's worker" in worker.output
