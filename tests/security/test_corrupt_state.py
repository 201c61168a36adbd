"""Hand-written (or half-written) state in Redis: corrupt fields on a job that fails, keys of the
wrong type, a job hash of 10,000 fields. The job that cannot be run fails saying why; the
worker, the other queues and the other jobs go on."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.infrastructure.queue.errors import InvalidOptionError
from app.infrastructure.queue.port import JobStatus, RetryPolicy
from app.infrastructure.queue.rq_queue import RQQueue
from tests.security.test_hostile_jobs import SIGNING_KEY, outcome, plant, run_burst, then_a_normal_job
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

BAD_RETRY_LISTS = ["{", "[null]", '"ab"', "5", "[1e999]", "[-1]", "[" + ",".join(["1"] * 101) + "]"]


@pytest.mark.parametrize("intervals", BAD_RETRY_LISTS)
def test_a_failing_job_with_a_corrupt_retry_list_fails_saying_so_and_the_worker_goes_on(
    settings, r, tmp_path, intervals
):
    signed = replace(settings, signing_key=SIGNING_KEY)
    queue = RQQueue(r, signed)
    victim = queue.enqueue("fail_always", {"message": "boom"}, retry=2)
    plant(r, victim, retry_intervals=intervals)
    normal, after = then_a_normal_job(queue, tmp_path)
    worker = run_burst(signed)
    status, error = outcome(r, victim)
    assert status == "failed" and "CorruptJobError" in error and "retry_intervals" in error, error
    assert r.zscore("rq:scheduled:default", victim) is None  # never scheduled (at infinity or at all)
    assert "Traceback" not in worker.output.replace(error, "")
    assert outcome(r, normal)[0] == "finished" and after.exists()


def test_the_producer_bounds_every_delay(settings, r):
    queue = RQQueue(r, settings)
    with pytest.raises(InvalidOptionError):
        queue.enqueue("add", {"a": 1, "b": 2}, delay=float("inf"))
    with pytest.raises(InvalidOptionError):
        queue.enqueue("add", {"a": 1, "b": 2}, retry=RetryPolicy(max_retries=1, base=1e999))
    with pytest.raises(InvalidOptionError, match=r"retry\.cap"):
        queue.enqueue("add", {"a": 1, "b": 2}, retry=RetryPolicy(max_retries=1, base=1, cap=1e12))


def test_a_queue_whose_keys_have_the_wrong_type_is_skipped_and_the_others_go_on(settings, r):
    queue = RQQueue(r, settings)
    stuck = queue.enqueue("add", {"a": 1, "b": 1})
    r.set("rq:wip:default", "not a sorted set")  # written by hand: the claim could not register a job
    other = queue.enqueue("add", {"a": 2, "b": 2}, priority="high")
    with WorkerProcess(settings) as worker:
        assert queue.wait(other, timeout=10).result == 4
        wait_until(lambda: "queue default skipped" in worker.read_output(), what="the log line")
        assert queue.get(stuck).status is JobStatus.QUEUED  # not popped, not lost: still queued
        r.delete("rq:wip:default")  # the operator repairs it
        assert queue.wait(stuck, timeout=10).result == 2


def test_a_job_hash_of_ten_thousand_fields_runs_like_any_other(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("add", {"a": 20, "b": 22})
    r.hset(f"rq:job:{job_id}", mapping={f"junk{i}": "x" * 20 for i in range(10_000)})
    with WorkerProcess(settings):
        view = queue.wait(job_id, timeout=15)
    assert (view.status, view.result, view.attempts) == (JobStatus.FINISHED, 42, 1)


def test_rq_result_ttl_of_minus_one_keeps_the_job(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("add", {"a": 1, "b": 1})
    plant(r, job_id, result_ttl="-1")  # rq's "keep forever", written by hand or by rq
    with WorkerProcess(settings):
        queue.wait(job_id, timeout=10)
    assert r.ttl(f"rq:job:{job_id}") == -1 and queue.get(job_id).result == 2


def test_get_on_a_hand_corrupted_job_gives_a_view_not_a_raw_error(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("add", {"a": 1, "b": 1})
    plant(r, job_id, enqueued_at=b"\xff\xfe", retry_intervals="{", data=b"\x80\x05garbage", meta=b"\xff")
    view = queue.get(job_id)
    assert view.id == job_id and view.enqueued_at is None and view.params == {}
    assert view.max_attempts >= 1
