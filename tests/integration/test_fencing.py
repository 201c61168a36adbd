"""A worker that comes back after losing its job to the reaper writes nothing over the newer run,
and a worker whose clock is off decides nothing: Redis's clock and the claim's execution id do."""

from __future__ import annotations

import signal

import pytest

from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def test_a_frozen_workers_late_outcome_is_dropped_and_the_newer_state_stands(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 1.0}, retry=0)
    frozen = WorkerProcess(settings, "--mode", "fork").start()
    try:
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, what="the job to start")
        frozen.signal(signal.SIGSTOP)  # its horse goes on and finishes the job; the worker cannot say so
        with WorkerProcess(settings):  # its reaper takes the job back: no retries left, so failed
            view = queue.wait(job_id, timeout=30)
            assert (view.status, view.error.startswith("AbandonedJobError")) == (JobStatus.FAILED, True)
        frozen.signal(signal.SIGCONT)  # back: it reads its horse's success, and must not write it
        wait_until(lambda: "job outcome dropped" in frozen.read_output(), timeout=20, what="the drop")
    finally:
        frozen.signal(signal.SIGCONT)
        frozen.stop()
    view = queue.get(job_id)
    assert view.status is JobStatus.FAILED
    assert r.zscore("rq:failed:default", job_id) is not None
    assert r.zscore("rq:finished:default", job_id) is None


@pytest.mark.parametrize(
    ("skew", "skewed_runs_the_job"),
    [(3600, False), (-30, True)],
    ids=["an hour ahead reaps", "30 s behind runs"],
)
def test_a_worker_whose_clock_is_off_reaps_nothing_live_and_runs_nothing_early(
    settings, r, skew, skewed_runs_the_job
):
    queue = RQQueue(r, settings)
    later = queue.enqueue("add", {"a": 1, "b": 1}, delay=1800)
    running = queue.enqueue("sleep", {"seconds": 8}, retry=0)  # longer than the heartbeat TTL (6.5 s)
    skewed = {"TASKQ_TEST_CLOCK_SKEW": str(skew)}
    with WorkerProcess(settings, env=skewed if skewed_runs_the_job else None):
        wait_until(lambda: queue.get(running).status is JobStatus.STARTED, what="the long job")
        with WorkerProcess(settings, env=None if skewed_runs_the_job else skewed):
            view = queue.wait(running, timeout=30)  # the other worker's reaper runs all the while
    assert (view.status, view.attempts) == (JobStatus.FINISHED, 1)
    assert queue.get(later).status is JobStatus.SCHEDULED


def test_every_outcome_of_a_reaped_execution_is_refused_as_stale(settings, r):
    """The store's view of the same race, step by step: claim, reap, then the late writes."""
    from app.bootstrap import bootstrap
    from app.infrastructure.queue.reaper import Reaper
    from app.infrastructure.queue.redis_store import RedisJobStore
    from app.infrastructure.queue.schema import Ending
    from app.infrastructure.queue.store import Recorded, new_execution_id

    queue = bootstrap(settings, connection=r).queue
    job_id = queue.enqueue("add", {"a": 1, "b": 1}, retry=1)
    late = RedisJobStore(r, "late-worker", ["default"], heartbeat_ttl=30, worker_ttl=60)
    claim = late.claim(new_execution_id()).claim()
    assert claim is not None and claim.job_id == job_id
    r.zadd("rq:wip:default", {f"{job_id}:{claim.execution_id}": 0})  # its deadline has passed
    assert Reaper(r, ["default"], 1.0, "reaper").reap("default") == ([job_id], [])
    assert late.heartbeat(claim).job_ours is False
    assert late.fail(claim, Ending.FAILED, None, "late failure") is Recorded.STALE
    assert late.finish(claim, "", None)[0] is Recorded.STALE
    view = queue.get(job_id)
    assert view.status is JobStatus.QUEUED  # back in its queue, for a retry
    assert r.zscore("rq:finished:default", job_id) is None and r.zscore("rq:failed:default", job_id) is None
    again = late.claim(new_execution_id()).claim()  # the job runs again, under a new execution
    assert again is not None and again.job_id == job_id
    assert late.finish(again, "", None)[0] is Recorded.DONE
    assert late.finish(again, "", None)[0] is Recorded.ALREADY  # a repeated call after a lost reply
