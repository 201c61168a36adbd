"""QUEUE_MAX_FAILED: a queue's failed registry keeps at most that many jobs, the oldest pruned first
(deleted as `taskq failed purge` deletes them), counted for the `taskq_failed_pruned` metric."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.bootstrap import bootstrap
from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.errors import JobNotFoundError
from app.infrastructure.queue.leader import Lease
from app.infrastructure.queue.reaper import Reaper
from app.infrastructure.queue.redis_store import RedisJobStore
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.store import new_execution_id
from app.worker.metrics import QueueCollector
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def test_the_failed_registry_keeps_the_newest_jobs_and_counts_the_pruned(settings, r):
    bounded = replace(settings, max_failed=3)
    queue = RQQueue(r, bounded)
    ids = [queue.enqueue("fail_permanently", {"message": f"no {i}"}) for i in range(6)]
    with WorkerProcess(bounded, "--mode", "inline"):  # one worker: they fail in enqueue order
        wait_until(lambda: r.get("taskq:pruned:default") == b"3", timeout=20, what="three jobs pruned")
    assert r.zrange("rq:failed:default", 0, -1) == [job_id.encode() for job_id in ids[3:]]
    for job_id in ids[:3]:
        with pytest.raises(JobNotFoundError):
            queue.get(job_id)
        assert not r.exists(f"rq:results:{job_id}")
    assert QueueAdmin(r, bounded).pruned(["default"]) == {"default": 3}


def test_jobs_the_reaper_fails_are_bounded_too(settings, r):
    queue = bootstrap(settings, connection=r).queue
    ids = [queue.enqueue("add", {"a": i, "b": 1}, retry=0) for i in range(3)]
    store = RedisJobStore(r, "gone-worker", ["default"], heartbeat_ttl=30, worker_ttl=60)
    for _ in ids:
        claim = store.claim(new_execution_id()).claim()
        assert claim is not None
        r.zadd("rq:wip:default", {f"{claim.job_id}:{claim.execution_id}": 0})  # its deadline passed
    requeued, failed = Reaper(r, ["default"], 1.0, "reaper", max_failed=2).reap("default")
    assert (requeued, sorted(failed)) == ([], sorted(ids))
    assert r.zcard("rq:failed:default") == 2 and r.get("taskq:pruned:default") == b"1"


def test_no_bound_keeps_every_failed_job(settings, r):
    unbounded = replace(settings, max_failed=0)
    queue = RQQueue(r, unbounded)
    ids = [queue.enqueue("fail_permanently") for _ in range(4)]
    with WorkerProcess(unbounded, "--mode", "inline"):
        for job_id in ids:
            queue.wait(job_id, timeout=20)
    assert r.zcard("rq:failed:default") == 4 and not r.exists("taskq:pruned:default")


def test_the_metric_reads_the_count_from_redis(settings, r):
    r.set("taskq:pruned:default", 7)
    families = {
        family.name: family
        for family in QueueCollector(QueueAdmin(r, settings), Lease(r, "pruned-test")).collect()
    }
    samples = {s.labels["queue"]: s.value for s in families["taskq_failed_pruned"].samples}
    assert samples["default"] == 7 and samples["high"] == 0
