"""Pool mode: long-lived work horses, each running many jobs, replaced when they should be.

Real worker processes (`--mode pool`) on the test Redis; every pid signalled here is a process
the test's own worker started. Timeouts, stops and `sys.exit` in pool mode are in the tests
parametrized by mode (test_job_api.py, test_work_horses.py, test_stop_race.py).
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest

from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.harness import direct_children
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def pids_of(queue: RQQueue, count: int) -> list[int]:
    """The pid each of `count` jobs ran in, in order (one job at a time: one worker)."""
    ids = [queue.enqueue("whoami") for _ in range(count)]
    return [queue.wait(job_id, timeout=20).result["pid"] for job_id in ids]


def horses(worker: WorkerProcess) -> list[int]:
    """The work horses under the worker's forker (its spare, if one was forked ahead, too)."""
    return [pid for forker in direct_children(worker.pid) for pid in direct_children(forker)]


def test_one_horse_runs_many_jobs_out_of_the_worker(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(settings, "--mode", "pool") as worker:
        pids = pids_of(queue, 20)
    assert len(set(pids)) == 1 and pids[0] != worker.pid


def test_a_horse_is_replaced_after_its_max_jobs(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(replace(settings, max_jobs_per_horse=3), "--mode", "pool") as worker:
        pids = pids_of(queue, 8)
    assert [pids[i] == pids[i - 1] for i in range(1, 8)] == [True, True, False, True, True, False, True]
    assert "work horse replaced" in worker.output and "WORKER_MAX_JOBS_PER_HORSE" in worker.output


def test_a_horse_above_the_rss_bound_is_replaced_after_its_job(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(replace(settings, max_horse_rss_mb=200), "--mode", "pool") as worker:
        first = pids_of(queue, 1)[0]
        heavy = queue.enqueue("hold_memory", {"mb": 250})
        assert queue.wait(heavy, timeout=30).result == first  # it finishes in the horse it grew
        after = pids_of(queue, 2)
    assert after[0] == after[1] != first
    assert "WORKER_MAX_HORSE_RSS_MB" in worker.output


def test_a_horse_killed_mid_job_retries_its_job_and_the_worker_goes_on(settings, r):
    queue = RQQueue(r, replace(settings, retry_max=1, retry_base=0.0))
    doomed = queue.enqueue("die", {"signum": int(signal.SIGKILL)})  # its horse dies on every attempt
    with WorkerProcess(settings, "--mode", "pool"):
        view = queue.wait(doomed, timeout=20)
        assert pids_of(queue, 2)[0] != 0  # the next jobs run, in a new horse
    assert (view.status, view.attempts) == (JobStatus.FAILED, 2)  # retried once, then failed
    assert "terminated unexpectedly by signal 9" in view.error


def test_a_horse_killed_from_outside_fails_its_job_saying_so(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 30}, retry=0)
    with WorkerProcess(settings, "--mode", "pool") as worker:
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, what="the job to start")
        (running,) = wait_until(lambda: horses(worker), what="the job's horse")
        os.kill(running, signal.SIGKILL)
        view = queue.wait(job_id, timeout=20)
        assert queue.wait(queue.enqueue("add", {"a": 2, "b": 3}), timeout=20).result == 5
    assert view.status is JobStatus.FAILED and "signal 9" in view.error


def test_a_timeout_kills_the_horse_and_the_next_job_gets_a_new_one(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(settings, "--mode", "pool"):
        before = pids_of(queue, 1)[0]
        slow = queue.enqueue("sleep", {"seconds": 30}, timeout=1, retry=0)
        view = queue.wait(slow, timeout=20)
        after = pids_of(queue, 1)[0]
    assert view.status is JobStatus.FAILED and "JobTimeoutException" in view.error
    assert after != before


def test_stop_ends_the_job_and_a_new_horse_takes_the_next(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(settings, "--mode", "pool"):
        before = pids_of(queue, 1)[0]
        job_id = queue.enqueue("sleep", {"seconds": 30}, retry=3)
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, what="the job to start")
        queue.stop(job_id)  # what `taskq stop` calls
        view = queue.wait(job_id, timeout=20)
        after = pids_of(queue, 1)[0]
    assert (view.status, view.attempts) == (JobStatus.STOPPED, 1)
    assert after != before


def test_sigterm_finishes_the_current_job_then_the_worker_exits(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 1.5}, retry=0)
    worker = WorkerProcess(settings, "--mode", "pool").start()
    try:
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, what="the job to start")
        tree = wait_until(lambda: horses(worker), what="the job's horse")
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.stop()
    view = queue.get(job_id)
    assert (view.status, view.attempts) == (JobStatus.FINISHED, 1), view.error
    wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in tree), what="the horse to exit")


def test_a_process_the_job_leaves_running_is_ended_after_the_job(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(settings, "--mode", "pool") as worker:
        job_id = queue.enqueue("fork_and_linger", {"seconds": 60}, timeout=30)
        assert queue.wait(job_id, timeout=20).result == "done"  # its outcome did not wait for it
        (running,) = wait_until(lambda: horses(worker), what="the horse")
        wait_until(lambda: not direct_children(running), what="the lingering process to be ended")
