"""Issue 19 item 2: a plain `rq worker` started on our queues by habit.

It is named in `taskq info`, in a taskq worker's start log and in a metric; and it cannot run
our jobs: their stored call carries taskq's marker in rq's `instance` slot, which a plain rq
worker honours (and fails on) while rq's readers still read the job.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rq.job import Job

from app.infrastructure.process import stop_process
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.servers import free_port
from tests.e2e.conftest import TASKQ, cli_env
from tests.e2e.test_metrics import scrape, value
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration
RQ = Path(sys.executable).parent / "rq"


@pytest.fixture
def plain_rq_worker(settings, r, tmp_path):
    log = (tmp_path / "rq-worker.log").open("w")
    process = subprocess.Popen(
        [str(RQ), "worker", "-u", settings.redis_url, "--name", "plain-rq", "default"],
        env=cli_env(settings), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until(lambda: r.sismember("rq:workers", "rq:worker:plain-rq"), timeout=30, what="rq worker")
        yield process
    finally:
        stop_process(process, grace=10)
        log.close()


def test_a_plain_rq_worker_is_named_everywhere_and_cannot_run_our_jobs(
    plain_rq_worker, settings, r, tmp_path
):
    queue = RQQueue(r, settings)
    evidence = tmp_path / "ran"
    job_id = queue.enqueue("touch", {"path": str(evidence)}, retry=0)
    view = queue.wait(job_id, timeout=30)  # taken by the plain rq worker: nothing else serves default
    assert view.status.value == "failed" and not evidence.exists()
    assert "AttributeError: 'str' object has no attribute 'tests.support.jobs.touch'" in view.error
    fetched = Job.fetch(job_id, connection=r)  # rq's readers still read the job
    assert (fetched.func_name, fetched.kwargs) == ("tests.support.jobs.touch", {"path": str(evidence)})

    info = subprocess.run(
        [str(TASKQ), "info"], env=cli_env(settings), capture_output=True, text=True, timeout=60
    )
    assert "warning: worker plain-rq" in info.stderr and "not a taskq worker" in info.stderr, info.stderr
    port = free_port()
    with WorkerProcess(settings, "--queues", "high", "--metrics-port", str(port)) as worker:
        samples = wait_until(lambda: scrape(port), what="metrics")
        assert value(samples, "taskq_foreign_workers") == 1
    assert "worker plain-rq" in worker.communicate() and "not a taskq worker" in worker.output
    data = json.loads(
        subprocess.run(
            [str(TASKQ), "info", "--json"], env=cli_env(settings), capture_output=True, timeout=60
        ).stdout
    )
    assert [w["taskq"] for w in data["workers"] if w["name"] == "plain-rq"] == [False]
