"""Issue 19 item 3: a real Prometheus (Debian's `prometheus`) scraping two workers.

The documented queries work as written: job labels arrive as `job_name` (not `exported_job`:
`job` is Prometheus's own target label) and `sum()` of a queue's depth counts it once, whatever
the number of workers. Skipped, saying why, where /usr/bin/prometheus is missing
(`make prometheus-test` installs it).
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from app.infrastructure.process import stop_process
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.servers import free_port
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.e2e
PROMETHEUS = Path("/usr/bin/prometheus")
ADD = "tests.support.jobs.add"


def query(base: str, promql: str) -> list[dict] | None:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return json.loads(reply.read())["data"]["result"]
    except OSError:
        return None


def scalar(base: str, promql: str) -> float | None:
    result = query(base, promql)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def prometheus(tmp_path):
    """Start Prometheus scraping `targets` every second, on a free loopback port; stopped by pid."""
    if not PROMETHEUS.exists():
        pytest.skip("Debian's prometheus is not installed: `make prometheus-test` installs it and runs this")
    started = []

    def start(targets: list[str]) -> str:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: taskq\n    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
        )
        process = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
        )  # fmt: skip
        started.append(process)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        stop_process(process, grace=10)


def test_prometheus_sees_job_name_and_counts_each_queue_once(prometheus, settings, r):
    queue = RQQueue(r, settings)
    for _ in range(3):
        queue.enqueue("add", {"a": 1, "b": 1}, priority="low")  # served by no worker here
    port = free_port(2)
    with WorkerProcess(settings, "--queues", "high,default", "--processes", "2", "--metrics-port", str(port)):
        base = prometheus([f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"])
        done = queue.enqueue("add", {"a": 2, "b": 3})
        assert queue.wait(done, timeout=15).result == 5
        wait_until(lambda: scalar(base, 'count(up{job="taskq"} == 1)') == 2, timeout=60, interval=0.5,
                   what="Prometheus to scrape both workers")  # fmt: skip
        finished = f'sum(taskq_jobs_total{{job="taskq", job_name="{ADD}", outcome="finished"}})'
        wait_until(lambda: scalar(base, finished) == 1, timeout=60, interval=0.5, what="the job's counter")
        depth = wait_until(
            lambda: query(base, "sum by (queue) (taskq_queue_depth)"), timeout=60, interval=0.5
        )
        assert {row["metric"]["queue"]: float(row["value"][1]) for row in depth} == {
            "high": 0.0, "default": 0.0, "low": 3.0,
        }  # fmt: skip
        assert scalar(base, "sum(taskq_metrics_leader)") == 1
        assert query(base, '{exported_job!=""}') == []
