"""Fork mode's processes: the forker that forks the work horses, and how a horse's death is told.

Real worker processes on the test Redis; every pid here is one the test's worker started.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import redis

from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.harness import descendants, direct_children
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def forked(pid: int) -> list[int] | None:
    tree = descendants(pid)
    return tree if len(tree) >= 2 else None


def worker_pid(r: redis.Redis) -> int:
    (key,) = r.smembers("rq:workers")
    return int(r.hget(key, "pid"))


def test_a_horse_killed_by_a_signal_fails_its_job_saying_so_and_the_worker_goes_on(settings, r):
    queue = RQQueue(r, settings)
    doomed = queue.enqueue("die", {"signum": int(signal.SIGKILL)}, retry=0)
    after = queue.enqueue("add", {"a": 1, "b": 2})
    with WorkerProcess(settings, "--mode", "fork"):
        view = queue.wait(doomed, timeout=15)
        assert queue.wait(after, timeout=15).result == 3
    assert view.status is JobStatus.FAILED
    assert "terminated unexpectedly by signal 9" in view.error


def test_a_killed_forker_is_replaced_and_jobs_go_on(settings, r):
    queue = RQQueue(r, settings)
    with WorkerProcess(settings, "--mode", "fork") as worker:
        assert queue.wait(queue.enqueue("add", {"a": 1, "b": 1}), timeout=15).result == 2
        (forker,) = direct_children(worker_pid(r))
        os.kill(forker, signal.SIGKILL)
        wait_until(lambda: not alive(forker), what="the forker to die")
        assert queue.wait(queue.enqueue("add", {"a": 2, "b": 2}), timeout=15).result == 4
        (replacement,) = wait_until(lambda: direct_children(worker_pid(r)), what="a new forker")
        assert replacement != forker
    assert "forker is gone; starting a new one" in worker.output


def test_no_horse_outlives_a_killed_worker(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 30}, retry=0)
    with WorkerProcess(settings, "--mode", "fork") as worker:
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, what="the job to start")
        # The forker and the job's horse (and maybe the next spare); the horse is forked ahead,
        # asynchronously: the job is `started` from its claim on, before a horse may exist.
        tree = wait_until(lambda: forked(worker_pid(r)), what="the forker and a horse")
        worker.signal(signal.SIGKILL)
        worker.wait()
    wait_until(lambda: not any(alive(pid) for pid in tree), timeout=10, what="every descendant to die")


def test_a_process_the_job_leaves_running_does_not_hold_its_outcome(settings, r):
    """The grandchild holds the horse's outcome pipe open: the worker must not wait for it."""
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("fork_and_linger", {"seconds": 60}, timeout=30, retry=2)
    with WorkerProcess(settings, "--mode", "fork"):
        view = queue.wait(job_id, timeout=20)  # not the job's timeout (30 s): at once
    assert (view.status, view.result, view.attempts) == (JobStatus.FINISHED, "done", 1)


def test_a_sigterm_to_every_process_of_the_service_lets_the_job_finish(settings, r):
    """`systemctl stop` (KillMode=control-group) signals the worker, the forker and the horse alike."""
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 1.5}, retry=0)
    worker = WorkerProcess(settings, "--mode", "fork").start()
    try:
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, what="the job to start")
        tree = wait_until(lambda: forked(worker.pid), what="the forker and the horse")
        for pid in [worker.pid, *tree]:
            os.kill(pid, signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.stop()
    view = queue.get(job_id)
    assert (view.status, view.attempts) == (JobStatus.FINISHED, 1), view.error


@pytest.mark.parametrize("mode", ["fork", "pool", "inline"])
def test_sys_exit_in_a_job_fails_the_job_not_the_worker(settings, r, mode):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("exit_now", {"code": 0}, retry=0)
    after = queue.enqueue("add", {"a": 1, "b": 1})
    with WorkerProcess(settings, "--mode", mode):
        view = queue.wait(job_id, timeout=15)
        assert queue.wait(after, timeout=15).result == 2
    assert view.status is JobStatus.FAILED and "SystemExit" in view.error


def test_a_result_over_its_bound_fails_the_job_saying_so(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("big_result", {"size": settings.max_result_bytes + 1}, retry=3)
    with WorkerProcess(settings):
        view = queue.wait(job_id, timeout=15)
    assert (view.status, view.attempts) == (JobStatus.FAILED, 1)  # as large again on a retry: none
    assert view.error.startswith("ResultTooLargeError") and "QUEUE_MAX_RESULT_BYTES" in view.error
