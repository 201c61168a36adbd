"""Issue 19 item 4: `rq suspend` (rq's real CLI) is honoured and shown: the worker's state,
`taskq info` (and its `--json` key `suspended`), a metric and one log line each way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.infrastructure.queue.rq_queue import RQQueue
from chaos.servers import free_port
from tests.e2e.conftest import TASKQ, cli_env
from tests.e2e.test_metrics import scrape, value
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration
RQ = Path(sys.executable).parent / "rq"


def rq(settings, *args: str) -> None:
    subprocess.run([str(RQ), *args, "-u", settings.redis_url], check=True, capture_output=True, timeout=60)


def info(settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TASKQ), "info", *args], env=cli_env(settings), capture_output=True, text=True, timeout=60
    )


def test_rq_suspend_is_shown_everywhere_and_rq_resume_lets_jobs_run(settings, r):
    queue = RQQueue(r, settings)
    port = free_port()
    with WorkerProcess(settings, "--metrics-port", str(port), name="held") as worker:
        rq(settings, "suspend")
        try:
            job_id = queue.enqueue("add", {"a": 1, "b": 2})
            wait_until(lambda: r.hget("rq:worker:held", "state") == b"suspended", what="the suspended state")
            assert queue.get(job_id).status.value == "queued"
            data = json.loads(info(settings, "--json").stdout)
            assert data["suspended"] is True
            assert [w["state"] for w in data["workers"] if w["name"] == "held"] == ["suspended"]
            assert "suspended: workers take no jobs (rq suspend)" in info(settings).stdout
            assert value(wait_until(lambda: scrape(port), what="metrics"), "taskq_suspended") == 1
        finally:
            rq(settings, "resume")
        assert queue.wait(job_id, timeout=15).result == 3
        assert json.loads(info(settings, "--json").stdout)["suspended"] is False
    log = worker.output
    assert log.count("queues suspended (rq suspend)") == 1 and log.count("queues resumed (rq resume)") == 1, (
        log
    )
