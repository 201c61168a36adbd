"""Issue 4, the quick part: dead workers, a dead Redis, a full Redis; the chaos suite does the rest."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest
import redis

from app.infrastructure.queue.errors import QueueFullError, QueueUnavailableError
from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.connection import connect
from chaos.servers import PrivateRedis
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def worker_pids(r: redis.Redis) -> set[int]:
    return {int(r.hget(key, "pid") or 0) for key in r.smembers("rq:workers")} - {0}


def test_the_supervisor_restarts_a_killed_worker(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(settings, "--processes", "2"):
        first = wait_until(lambda: len(worker_pids(r)) == 2 and worker_pids(r), what="two workers")
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(worker_pids(r) - {victim}) == 2, timeout=20, what="a replacement worker")
        assert queue.wait(queue.enqueue("add", {"a": 1, "b": 1}), timeout=10).result == 2


def test_burst_with_several_processes_ends_once_the_queues_are_empty(settings, r):
    queue = RQQueue(r, settings)
    job_ids = [queue.enqueue("add", {"a": i, "b": 1}) for i in range(20)]
    worker = WorkerProcess(settings, "--processes", "2", "--burst").start(wait_ready=False)
    try:
        assert worker.wait(timeout=30) == 0
    finally:
        worker.stop()
    assert [queue.get(job_id).result for job_id in job_ids] == [i + 1 for i in range(20)]


def test_the_job_of_a_killed_worker_is_taken_back_and_finished(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 2}, retry=2)
    with WorkerProcess(settings) as first:
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, what="the job to start")
        first.signal(signal.SIGKILL)
        first.wait()
    with WorkerProcess(settings):
        # Back after the heartbeat TTL (3 x 0.5 + 5 s) and an upkeep (1 s), then the 2 s job;
        # how fast jobs come back is measured in `make chaos` (its "recovery s").
        view = queue.wait(job_id, timeout=30)
    assert (view.status, view.attempts) == (JobStatus.FINISHED, 2)


@pytest.fixture
def private_redis():
    server = PrivateRedis().start()
    yield server
    server.remove()


def test_a_down_redis_is_reported_after_the_bounded_retry(settings, private_redis):
    local = replace(settings, redis_url=private_redis.url, redis_retry_seconds=1.0)
    queue = RQQueue(connect(local), local)
    queue.enqueue("add", {"a": 1, "b": 1})
    private_redis.stop()
    started = time.monotonic()
    with pytest.raises(QueueUnavailableError):
        queue.enqueue("add", {"a": 1, "b": 1})
    assert time.monotonic() - started >= 0.3  # it retried with backoff before giving up


def test_a_worker_resumes_when_redis_comes_back(settings, private_redis):
    local = replace(settings, redis_url=private_redis.url)
    with WorkerProcess(local) as worker:
        private_redis.stop()
        time.sleep(1.5)  # the outage itself: the worker must ride through it
        private_redis.start()  # without persistence: it comes back empty, the worker forgotten
        queue = RQQueue(connect(local), local)
        job_id = queue.enqueue("add", {"a": 2, "b": 2})
        assert queue.wait(job_id, timeout=15).result == 4
        client = private_redis.client()
        key = f"rq:worker:{worker.name}".encode()
        wait_until(
            lambda: key in client.smembers("rq:workers") and client.hget(key, "birth"), what="re-registered"
        )


def test_a_full_redis_refuses_with_a_clear_error_and_writes_nothing(settings):
    server = PrivateRedis("--maxmemory", "2mb", "--maxmemory-policy", "noeviction").start()
    try:
        local = replace(settings, redis_url=server.url)
        queue = RQQueue(connect(local), local)
        client = server.client()
        with pytest.raises(QueueFullError):
            for _ in range(2000):
                queue.enqueue("echo", {"pad": os.urandom(8000).hex()})
        jobs = list(client.scan_iter("rq:job:*"))
        assert len(jobs) == client.llen("rq:queue:default")
        assert all(client.hget(key, "data") for key in jobs)
    finally:
        server.remove()
