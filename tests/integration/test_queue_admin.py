"""QueueAdmin against a real Redis and real workers: counts, workers, failed jobs, requeue, purge."""

from __future__ import annotations

import pytest

from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.errors import JobNotFoundError, JobStateError
from app.infrastructure.queue.port import JobStatus, RetryPolicy
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.inprocess import drain
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.integration


def test_counts_follow_jobs_through_every_registry(settings, r):
    queue, admin = RQQueue(r, settings), QueueAdmin(r, settings)
    queue.enqueue("add", {"a": 1, "b": 2}, priority="high")
    queue.enqueue("add", {"a": 1, "b": 2}, delay=60)
    blocker = queue.enqueue("add", {"a": 1, "b": 2}, delay=60)
    queue.enqueue("add", {"a": 1, "b": 2}, depends_on=blocker)
    queue.cancel(queue.enqueue("add", {"a": 1, "b": 2}, priority="low"))
    counts = {c.queue: c for c in admin.counts()}
    assert counts["high"].queued == 1 and counts["high"].oldest_queued_age is not None
    assert (counts["default"].scheduled, counts["default"].deferred) == (2, 1)
    assert counts["low"].canceled == 1 and counts["low"].oldest_queued_age is None
    drain(settings, r)
    assert admin.counts(["high"])[0].finished == 1
    assert admin.counts(["high"])[0].queued == 0


def test_workers_are_listed_with_their_state_until_they_stop(settings, r):
    admin = QueueAdmin(r, settings)
    with WorkerProcess(settings, name="admin-worker") as worker:
        (info,) = [w for w in admin.workers() if w.name == "admin-worker"]
        assert (info.pid, info.queues, info.state) == (worker.pid, settings.queue_names, "idle")
        assert info.last_heartbeat is not None
    assert [w for w in admin.workers() if w.name == "admin-worker"] == []


def test_requeue_resets_retries_and_a_worker_runs_it_again(settings, r, tmp_path):
    queue, admin = RQQueue(r, settings), QueueAdmin(r, settings)
    runs = tmp_path / "runs"
    job_id = queue.enqueue(
        "fail_then_succeed", {"path": str(runs), "failures": 2}, retry=RetryPolicy(max_retries=1, base=0)
    )
    drain(settings, r)
    failed = queue.get(job_id)
    assert (failed.status, failed.attempts) == (JobStatus.FAILED, 2)
    (entry,) = admin.failed()
    assert (entry.id, entry.error, entry.attempts) == (job_id, "RuntimeError: failing on purpose, run 2", 2)
    assert "Traceback" in (admin.traceback(job_id) or "")

    assert admin.requeue(job_id) == "default"
    view = queue.get(job_id)
    assert (view.status, view.attempts, view.error) == (JobStatus.QUEUED, 0, None)
    assert r.ttl(f"rq:job:{job_id}") == -1, "a queued job must not expire with its old failure TTL"
    assert r.llen("taskq:wake:default") == 1 and admin.failed() == []
    with pytest.raises(JobStateError):
        admin.requeue(job_id)
    with WorkerProcess(settings):
        done = queue.wait(job_id, timeout=15)
    assert (done.status, done.result, done.attempts) == (JobStatus.FINISHED, 3, 1)


def test_requeue_all_and_purge(settings, r):
    queue, admin = RQQueue(r, settings), QueueAdmin(r, settings)
    ids = [queue.enqueue("fail_always", {}, retry=0, priority=p) for p in ("high", "low", "low")]
    drain(settings, r)
    assert sorted(job.id for job in admin.failed()) == sorted(ids)
    assert sorted(admin.requeue_all(["low"])) == sorted(ids[1:])
    assert [job.id for job in admin.failed()] == [ids[0]]
    drain(settings, r)
    assert admin.purge() == 3
    assert admin.failed() == []
    for job_id in ids:
        assert not r.exists(f"rq:job:{job_id}", f"rq:results:{job_id}")
    with pytest.raises(JobNotFoundError):
        admin.requeue(ids[0])


def test_purge_keeps_a_live_job_that_reuses_a_failed_id(settings, r):
    queue, admin = RQQueue(r, settings), QueueAdmin(r, settings)
    queue.enqueue("fail_always", {}, retry=0, job_id="reused")
    drain(settings, r)
    queue.enqueue("add", {"a": 1, "b": 1}, job_id="reused", delay=60)
    r.zadd("rq:failed:default", {"reused": 9e12})  # a stale entry, as plain rq can leave
    assert admin.purge() == 0
    assert queue.get("reused").status is JobStatus.SCHEDULED


def test_oldest_queued_age_is_read_from_the_head_of_the_queue(settings, r):
    queue, admin = RQQueue(r, settings), QueueAdmin(r, settings)
    old = queue.enqueue("add", {"a": 1, "b": 1})
    r.hset(f"rq:job:{old}", "enqueued_at", "2020-01-01T00:00:00.000000Z")
    queue.enqueue("add", {"a": 1, "b": 1})
    assert admin.counts(["default"])[0].oldest_queued_age > 365 * 24 * 3600
