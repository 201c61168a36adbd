"""`taskq worker --metrics-port`: a real worker process, scraped over HTTP while it runs."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.infrastructure.queue.port import JobRequest, JobStatus, RetryPolicy
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.servers import free_port
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.e2e
ADD = "tests.support.jobs.add"
FAIL = "tests.support.jobs.fail_always"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_outcomes_retries_durations_and_read_the_queues(settings, r):
    queue = RQQueue(r, settings)
    port = free_port()
    waiting = [queue.enqueue("add", {"a": 1, "b": 1}, priority="low") for _ in range(3)]
    with WorkerProcess(settings, "--queues", "high,default", "--metrics-port", str(port)):
        done = [queue.enqueue("add", {"a": i, "b": 1}) for i in range(2)]
        bad = queue.enqueue("fail_always", {}, retry=RetryPolicy(max_retries=1, base=0))
        for job_id in (*done, bad):
            queue.wait(job_id, timeout=15)
        samples = wait_until(
            lambda: (
                (s := scrape(port))
                and value(s, "taskq_jobs_total", job_name=FAIL, queue="default", outcome="failed")
                and s
            ),
            what="the last outcome to be counted",
        )
    assert value(samples, "taskq_jobs_total", job_name=ADD, queue="default", outcome="finished") == 2
    assert value(samples, "taskq_jobs_total", job_name=FAIL, queue="default", outcome="retried") == 1
    assert value(samples, "taskq_job_retries_total", job_name=FAIL, queue="default") == 1
    assert value(samples, "taskq_jobs_started_total", job_name=FAIL, queue="default") == 2
    count = "taskq_job_duration_seconds_count"
    assert value(samples, count, job_name=ADD, queue="default", outcome="finished") == 2
    assert value(samples, "taskq_redis_up") == 1
    assert value(samples, "taskq_queue_depth", queue="low") == len(waiting)
    assert value(samples, "taskq_queue_depth", queue="default") == 0
    assert value(samples, "taskq_queue_oldest_job_age_seconds", queue="low") > 0
    assert value(samples, "taskq_queue_jobs", queue="default", state="failed") == 1
    assert value(samples, "taskq_workers_alive") >= 1


def test_workflows_pending_are_gauges(settings, r):
    """Issue 14: a group whose children wait on a paused queue: 1 workflow, 3 members pending."""
    queue = RQQueue(r, settings)
    queue.pause("low")
    queue.group([JobRequest("add", {"a": 1, "b": 1}, priority="low") for _ in range(3)])
    port = free_port()
    with WorkerProcess(settings, "--metrics-port", str(port)):
        samples = wait_until(lambda: (s := scrape(port)) and value(s, "taskq_metrics_leader") == 1 and s)
    assert value(samples, "taskq_workflows_pending") == 1
    assert value(samples, "taskq_workflow_members_pending") == 3


def test_limits_are_gauges_running_and_waiting(settings, r):
    limited = replace(settings, limits="sleep=concurrency:1")
    queue = RQQueue(r, limited)
    first, second = (queue.enqueue("sleep", {"seconds": 3}) for _ in range(2))
    port = free_port(2)
    job, kind = "tests.support.jobs.sleep", "concurrency"

    def leader_sees_the_limit():
        for each in (port, port + 1):  # only the metrics leader exports the cluster-wide gauges
            s = _try_scrape(each)
            if (
                s
                and value(s, "taskq_limit_running", job_name=job, limit=kind) == 1
                and value(s, "taskq_limit_waiting", job_name=job, limit=kind) == 1
            ):
                return s
        return None

    with WorkerProcess(limited, "--processes", "2", "--mode", "inline", "--metrics-port", str(port)):
        samples = wait_until(leader_sees_the_limit, timeout=20, what="one running, one waiting on the limit")
        assert queue.get(second).status is JobStatus.QUEUED or queue.get(first).status is JobStatus.QUEUED
        queue.wait(second, timeout=20)
    assert value(samples, "taskq_queue_jobs", queue="default", state="started") == 1


def test_each_supervised_worker_serves_its_own_port_and_one_exports_the_cluster_gauges(settings):
    port = free_port(2)
    with WorkerProcess(settings, "--processes", "2", "--metrics-port", str(port)):
        scrapes = [
            wait_until(lambda p=each: _try_scrape(p), timeout=20, what=f"metrics on port {each}")
            for each in (port, port + 1)
        ]
    leaders = [s for s in scrapes if value(s, "taskq_metrics_leader") == 1]
    assert len(leaders) == 1, scrapes
    assert value(leaders[0], "taskq_workers_alive") >= 2
    (other,) = [s for s in scrapes if s is not leaders[0]]
    assert not [key for key in other if key[0].startswith(("taskq_queue_", "taskq_workers_alive"))]


def _try_scrape(port: int):
    try:
        return scrape(port)
    except OSError:
        return None


def test_a_worker_without_the_flag_does_not_import_prometheus_client():
    code = "import sys, app.worker.cli; sys.exit('prometheus_client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_port_in_use_stops_the_worker_with_one_line(settings):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = WorkerProcess(settings, "--metrics-port", str(port)).start(wait_ready=False)
        assert worker.wait(timeout=30) == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in worker.output
    assert "Traceback" not in worker.output
