"""One set of cases, run against every adapter of the `JobQueue` port: InMemoryQueue, RQQueue and
AsyncRQQueue (its coroutines run to completion on a loop of the harness's own, `tests/support/aio.py`).

Whatever the application's unit tests learn from the fake holds for the real thing.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.infrastructure.queue.errors import (
    DependencyError,
    InvalidJobIdError,
    InvalidOptionError,
    JobNotFoundError,
    JobStateError,
    SerializationError,
    UnknownJobError,
    WaitTimeoutError,
)
from app.infrastructure.queue.job_paths import INGEST_DOC_JOB
from app.infrastructure.queue.memory_queue import InMemoryQueue
from app.infrastructure.queue.port import JobQueue, JobRequest, JobStatus, RetryPolicy
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.aio import AsyncHarnessLoop
from tests.support.inprocess import drain

NOW_RETRY = RetryPolicy(max_retries=2, base=0, jitter=0)


class MemoryHarness:
    def __init__(self, settings):
        self.queue: JobQueue = InMemoryQueue(settings)

    def drain(self):
        self.queue.run_pending()


class RedisHarness:
    def __init__(self, settings, r):
        self.settings, self.r = settings, r
        self.queue: JobQueue = RQQueue(r, settings)

    def drain(self):
        drain(self.settings, self.r)


class AsyncRedisHarness(RedisHarness):
    """AsyncRQQueue behind a sync face: every case runs on it unchanged."""

    def __init__(self, settings, r, loop: AsyncHarnessLoop):
        super().__init__(settings, r)
        self.queue = loop.sync_queue(settings)


def harness_maker(request, settings, async_harness=AsyncRedisHarness):
    """`make(**setting_changes)` for the adapter `request.param` names (memory, redis, async)."""

    def make(**changes):
        local = replace(settings, **changes)
        if request.param == "memory":
            return MemoryHarness(local)
        if request.param == "async":
            loop = AsyncHarnessLoop()
            request.addfinalizer(loop.close)
            return async_harness(local, request.getfixturevalue("r"), loop)
        return RedisHarness(local, request.getfixturevalue("r"))

    return make


@pytest.fixture(params=["memory", "redis", "async"])
def make_harness(request, settings):
    return harness_maker(request, settings)


@pytest.fixture
def harness(make_harness):
    return make_harness()


def test_enqueue_returns_a_str_id_and_the_job_is_queued(harness):
    job_id = harness.queue.enqueue(job_name=INGEST_DOC_JOB, params={"doc_id": "123"})
    assert isinstance(job_id, str)
    view = harness.queue.get(job_id)
    assert (view.status, view.job_name, view.queue) == (JobStatus.QUEUED, INGEST_DOC_JOB, "default")
    assert view.params == {"doc_id": "123"} and view.attempts == 0 and view.max_attempts == 1


def test_a_job_runs_to_finished_with_its_result(harness):
    job_id = harness.queue.enqueue("add", {"a": 2, "b": 3})
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.result, view.attempts, view.error) == (JobStatus.FINISHED, 5, 1, None)
    assert view.started_at and view.ended_at and view.enqueued_at <= view.started_at <= view.ended_at


def test_short_names_and_paths_are_the_same_job(harness):
    assert (
        harness.queue.get(harness.queue.enqueue("add", {"a": 1, "b": 1})).job_name == "tests.support.jobs.add"
    )


def test_bad_input_raises_the_same_errors(harness):
    with pytest.raises(UnknownJobError):
        harness.queue.enqueue("nope", {})
    with pytest.raises(InvalidOptionError):
        harness.queue.enqueue("add", {"a": 1, "b": 1}, priority="urgent")
    with pytest.raises(InvalidJobIdError):
        harness.queue.enqueue("add", {"a": 1, "b": 1}, job_id="has:colon")
    with pytest.raises(JobNotFoundError):
        harness.queue.get("missing")


def test_a_failing_job_ends_failed_with_its_error(harness):
    job_id = harness.queue.enqueue("fail_always", {"message": "nope"})
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.error, view.attempts) == (JobStatus.FAILED, "ValueError: nope", 1)


def test_retries_until_success(harness, tmp_path):
    job_id = harness.queue.enqueue(
        "fail_then_succeed", {"path": str(tmp_path / "runs"), "failures": 2}, retry=NOW_RETRY
    )
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.result, view.attempts, view.max_attempts) == (JobStatus.FINISHED, 3, 3, 3)


def test_permanent_errors_are_not_retried(harness):
    job_id = harness.queue.enqueue("fail_permanently", {}, retry=NOW_RETRY)
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.attempts) == (JobStatus.FAILED, 1)
    assert "cannot be fixed by retrying" in view.error


def test_an_idempotency_key_makes_one_job(harness):
    first = harness.queue.enqueue("add", {"a": 1, "b": 1}, job_id="order-42")
    second = harness.queue.enqueue("add", {"a": 9, "b": 9}, job_id="order-42")
    assert first == second == "order-42"
    harness.drain()
    assert harness.queue.get("order-42").result == 2
    assert harness.queue.enqueue("add", {"a": 9, "b": 9}, job_id="order-42") == "order-42"
    harness.drain()
    assert harness.queue.get("order-42").result == 2  # finished within its result TTL: not run again


def test_a_failed_job_can_be_enqueued_again_under_its_key(harness):
    harness.queue.enqueue("fail_always", {}, job_id="retry-me")
    harness.drain()
    harness.queue.enqueue("add", {"a": 1, "b": 2}, job_id="retry-me")
    harness.drain()
    view = harness.queue.get("retry-me")
    assert (view.status, view.result) == (JobStatus.FINISHED, 3)


def test_cancel_a_queued_job(harness):
    job_id = harness.queue.enqueue("add", {"a": 1, "b": 1})
    harness.queue.cancel(job_id)
    harness.drain()
    assert harness.queue.get(job_id).status is JobStatus.CANCELED
    with pytest.raises(JobStateError):
        harness.queue.cancel(job_id)


def test_cannot_cancel_or_stop_a_finished_job(harness):
    job_id = harness.queue.enqueue("add", {"a": 1, "b": 1})
    harness.drain()
    with pytest.raises(JobStateError):
        harness.queue.cancel(job_id)
    with pytest.raises(JobStateError):
        harness.queue.stop(job_id)


def test_dependencies_run_after_their_parents(harness):
    parent = harness.queue.enqueue("add", {"a": 1, "b": 1})
    child = harness.queue.enqueue("add", {"a": 2, "b": 2}, depends_on=parent)
    assert harness.queue.get(child).status is JobStatus.DEFERRED
    harness.drain()
    assert harness.queue.get(parent).status is JobStatus.FINISHED
    assert harness.queue.get(child).result == 4


def test_dependents_of_a_failed_job_are_canceled(harness):
    parent = harness.queue.enqueue("fail_always", {})
    child = harness.queue.enqueue("add", {"a": 2, "b": 2}, depends_on=[parent])
    grandchild = harness.queue.enqueue("add", {"a": 2, "b": 2}, depends_on=[child])
    harness.drain()
    assert harness.queue.get(child).status is JobStatus.CANCELED
    assert harness.queue.get(grandchild).status is JobStatus.CANCELED
    with pytest.raises(DependencyError):
        harness.queue.enqueue("add", {"a": 1, "b": 1}, depends_on=parent)


def test_depending_on_a_missing_job_is_refused(harness):
    with pytest.raises(DependencyError) as caught:
        harness.queue.enqueue("add", {"a": 1, "b": 1}, depends_on="ghost")
    assert caught.value.dependency_id == "ghost"


def test_a_delayed_job_is_scheduled_not_run(harness):
    job_id = harness.queue.enqueue("add", {"a": 1, "b": 1}, delay=3600)
    harness.drain()
    assert harness.queue.get(job_id).status is JobStatus.SCHEDULED
    with pytest.raises(WaitTimeoutError):
        harness.queue.wait(job_id, timeout=0.2)


def test_enqueue_many_is_all_or_nothing(harness):
    good = JobRequest("add", {"a": 1, "b": 1}, job_id="batch-1")
    with pytest.raises(UnknownJobError):
        harness.queue.enqueue_many([good, JobRequest("nope", {})])
    with pytest.raises(JobNotFoundError):
        harness.queue.get("batch-1")
    with pytest.raises(DependencyError):
        harness.queue.enqueue_many([good, JobRequest("add", {"a": 1, "b": 1}, depends_on="ghost")])
    with pytest.raises(JobNotFoundError):
        harness.queue.get("batch-1")
    ids = harness.queue.enqueue_many(
        [good, JobRequest("add", {"a": 2, "b": 2}, depends_on="batch-1", priority="high")]
    )
    harness.drain()
    assert [harness.queue.get(i).result for i in ids] == [2, 4]


def test_progress_and_meta_are_visible(harness):
    job_id = harness.queue.enqueue("progress", {"steps": 4}, meta={"requested_by": "contract"})
    harness.drain()
    view = harness.queue.get(job_id)
    assert view.progress.done == view.progress.total == 4 and view.progress.message == "step 4"
    assert view.meta["requested_by"] == "contract"


def test_wait_returns_the_final_view(harness):
    job_id = harness.queue.enqueue("add", {"a": 4, "b": 4})
    harness.drain()
    assert harness.queue.wait(job_id, timeout=5).result == 8


def test_json_mode_rejects_what_json_cannot_carry(make_harness):
    harness = make_harness(serializer="json")
    with pytest.raises(SerializationError) as caught:
        harness.queue.enqueue("echo", {"fine": [1, "two"], "raw": b"bytes"})
    assert caught.value.key == "raw"
    job_id = harness.queue.enqueue("echo", {"fine": [1, "two"]})
    harness.drain()
    assert harness.queue.get(job_id).result == {"fine": [1, "two"]}


@pytest.mark.parametrize(
    ("params", "named"),
    [({"a": 1, "b": 2, "description": "x"}, "'description'"), ({"a": 1}, "'b'")],
    ids=["unknown", "missing"],
)
def test_params_the_function_cannot_take_fail_at_once_naming_them(harness, params, named):
    job_id = harness.queue.enqueue("add", params, retry=NOW_RETRY)
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.attempts) == (JobStatus.FAILED, 1)  # no retry: it can never fit
    assert view.error.startswith("InvalidParamsError") and named in view.error, view.error


def test_a_rate_limited_job_waits_its_turn_without_using_an_attempt(harness, tmp_path):
    job_id = harness.queue.enqueue(
        "rate_limited_once", {"path": str(tmp_path / "runs"), "retry_after": 3600}, retry=0
    )
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.attempts) == (JobStatus.SCHEDULED, 0)  # back later; retry=0 is not spent


def test_jobs_with_a_limit_key_run_like_any_other(harness):
    ids = [harness.queue.enqueue("add", {"a": i, "b": 1}, limit_key=f"customer-{i % 2}") for i in range(4)]
    harness.drain()
    assert [harness.queue.get(job_id).result for job_id in ids] == [1, 2, 3, 4]
