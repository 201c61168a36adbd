"""Chains and groups (issue 14), one set of cases against the adapters: InMemoryQueue, RQQueue, and
AsyncRQQueue (its `chain` and `group` awaited; views, which it does not have, read by RQQueue).

Every workflow reaches a final state: a child that fails, is canceled or expires settles its
group by its edge's policy, and each callback runs once (or is canceled, once, when its outcome
did not come).
"""

from __future__ import annotations

import time

import pytest

from app.infrastructure.queue.errors import (
    InvalidOptionError,
    UnknownJobError,
    WorkflowError,
    WorkflowNotFoundError,
)
from app.infrastructure.queue.memory_queue import InMemoryQueue
from app.infrastructure.queue.port import JobRequest, JobStatus
from app.infrastructure.queue.workflows import Chain, Edge
from tests.contract.test_job_queue_contract import RedisHarness, harness_maker
from tests.support.aio import AsyncHarnessLoop
from tests.support.redis_env import own_keys

F = JobStatus.FINISHED
C = JobStatus.CANCELED


class AsyncWrites:
    """What AsyncRQQueue has (chain, group, enqueue, cancel, ...) through it; the rest (the
    workflow views) through RQQueue, on the same Redis."""

    def __init__(self, async_queue, sync_queue):
        self._async, self._sync = async_queue, sync_queue

    def __getattr__(self, name):
        return getattr(self._async if hasattr(self._async._queue, name) else self._sync, name)


class AsyncWorkflowHarness(RedisHarness):
    def __init__(self, settings, r, loop: AsyncHarnessLoop):
        super().__init__(settings, r)
        self.queue = AsyncWrites(loop.sync_queue(settings), self.queue)


@pytest.fixture(params=["memory", "redis", "async"])
def make_harness(request, settings):
    return harness_maker(request, settings, AsyncWorkflowHarness)


@pytest.fixture
def harness(make_harness):
    return make_harness()


def expire(harness, seconds: float) -> None:
    """Let `seconds` pass for TTLs: the fake's clock moves, Redis's runs."""
    if isinstance(harness.queue, InMemoryQueue):
        harness.queue.advance(seconds)
    else:
        time.sleep(seconds)


def adds(n: int) -> list[JobRequest]:
    return [JobRequest("add", {"a": i, "b": 1}) for i in range(n)]


def test_a_chain_of_three_passes_results_along(harness):
    ids = harness.queue.chain(
        [JobRequest("add", {"a": 1, "b": 2}), JobRequest("double", {}), JobRequest("double", {})],
        pass_result="prev",
    )
    assert harness.queue.get(ids[1]).status is JobStatus.DEFERRED
    harness.drain()
    assert [harness.queue.get(i).result for i in ids] == [3, 6, 12]
    view = harness.queue.workflow(ids[-1])
    assert (view.kind, view.state, view.total, view.finished, view.is_final) == (
        "chain",
        "succeeded",
        3,
        3,
        True,
    )


def test_a_group_runs_its_callback_once_with_every_result_by_job_id(harness):
    gid = harness.queue.group(adds(50), on_success=JobRequest("echo", {"tag": "done"}))
    view = harness.queue.workflow(gid)
    assert (view.state, view.total, view.queued, view.finished) == ("open", 50, 50, 0)
    assert harness.queue.get(view.callbacks["on_success"][0]).status is JobStatus.DEFERRED
    harness.drain()
    view = harness.queue.workflow(gid)
    assert (view.state, view.finished, view.is_final) == ("succeeded", 50, True)
    callback = harness.queue.get(view.callbacks["on_success"][0])
    assert callback.status is F and callback.attempts == 1
    summary = callback.result["results"]
    assert callback.result["tag"] == "done"
    assert (summary["group_id"], summary["state"], summary["total"]) == (gid, "succeeded", 50)
    assert sorted(summary["results"].values()) == list(range(1, 51))
    assert summary["counts"]["finished"] == 50 and summary["failures"] == {}


@pytest.mark.parametrize(
    ("policy", "state", "ran", "canceled", "listed", "ignored"),
    [
        ("fail", "failed", "on_failure", "on_success", True, 0),
        ("ignore", "succeeded", "on_success", "on_failure", False, 1),
        ("continue", "succeeded", "on_success", "on_failure", True, 0),
    ],
)
def test_each_failure_policy_settles_the_group(harness, policy, state, ran, canceled, listed, ignored):
    bad = JobRequest("fail_always", {"message": "bad doc"}, job_id="bad-doc")
    gid = harness.queue.group(
        [*adds(3), Edge(bad, policy)],
        on_success=JobRequest("echo", {}),
        on_failure=JobRequest("echo", {}),
        on_complete=JobRequest("echo", {}),
    )
    harness.drain()
    view = harness.queue.workflow(gid)
    assert (view.state, view.finished, view.failed, view.ignored, view.is_final) == (
        state,
        3,
        1,
        ignored,
        True,
    )
    assert harness.queue.get(view.callbacks[ran][0]).status is F
    assert harness.queue.get(view.callbacks["on_complete"][0]).status is F
    skipped = harness.queue.get(view.callbacks[canceled][0])
    assert skipped.status is C
    summary = harness.queue.get(view.callbacks[ran][0]).result["results"]
    assert summary["failures"] == ({"bad-doc": "failed"} if listed else {})
    assert (view.first_failure == "bad-doc") == (policy == "fail")


def test_a_canceled_child_fails_the_group(harness):
    ids = [f"child-{i}" for i in range(3)]
    gid = harness.queue.group(
        [JobRequest("add", {"a": i, "b": 0}, job_id=j) for i, j in enumerate(ids)],
        on_success=JobRequest("echo", {}),
        on_failure=JobRequest("echo", {}),
    )
    harness.queue.cancel("child-1")
    view = harness.queue.workflow(gid)
    assert (view.state, view.canceled, view.failures) == ("failed", 1, {"child-1": "canceled"})
    harness.drain()
    view = harness.queue.workflow(gid)
    assert (view.finished, view.is_final) == (2, True)
    assert harness.queue.get(view.callbacks["on_failure"][0]).result["results"]["first_failure"] == "child-1"
    assert harness.queue.get(view.callbacks["on_success"][0]).status is C


def test_a_child_whose_ttl_expires_settles_the_group_as_expired(harness):
    gid = harness.queue.group(
        [*adds(2), Edge(JobRequest("add", {"a": 0, "b": 0}, ttl=1, job_id="late"), "continue")],
        on_complete=JobRequest("echo", {}),
    )
    expire(harness, 1.5)
    harness.drain()
    view = harness.queue.workflow(gid)
    assert (view.state, view.finished, view.expired, view.is_final) == ("succeeded", 2, 1, True)
    summary = harness.queue.get(view.callbacks["on_complete"][0]).result["results"]
    assert summary["failures"] == {"late": "expired"} and summary["counts"]["expired"] == 1


def test_a_callback_waiting_for_its_group_does_not_expire_meanwhile(harness):
    gid = harness.queue.group(adds(1), on_success=JobRequest("echo", {}, ttl=1))
    expire(harness, 1.5)
    harness.drain()
    callback = harness.queue.get(harness.queue.workflow(gid).callbacks["on_success"][0])
    assert callback.status is F  # its TTL started when the group released it


@pytest.mark.parametrize(
    ("policy", "after", "second"),
    [("fail", C, None), ("ignore", F, None), ("continue", F, {"failed": "first", "status": "failed"})],
)
def test_a_chain_step_after_a_failure_follows_its_edge(harness, policy, after, second):
    ids = harness.queue.chain(
        [
            Edge(JobRequest("fail_always", {}, job_id="first"), policy),
            JobRequest("echo", {}),
            JobRequest("echo", {}),
        ],
        pass_result="prev",
    )
    harness.drain()
    statuses = [harness.queue.get(i).status for i in ids]
    assert statuses == [JobStatus.FAILED, after, after]
    if after is F:
        assert harness.queue.get(ids[1]).result == {"prev": second}
    view = harness.queue.workflow(ids[-1])
    assert view.state == ("failed" if policy == "fail" else "succeeded") and view.is_final


def test_a_chain_step_whose_predecessor_expired_does_not_wait_forever(harness):
    ids = harness.queue.chain(
        [JobRequest("add", {"a": 1, "b": 1}, ttl=1), JobRequest("double", {})], pass_result="prev"
    )
    expire(harness, 1.5)
    harness.drain()
    assert harness.queue.get(ids[1]).status is C
    view = harness.queue.workflow(ids[-1])
    assert (view.state, view.expired, view.canceled, view.is_final) == ("failed", 1, 1, True)


def test_a_group_of_chains_gets_each_chains_last_result(harness):
    chains = [
        Chain([JobRequest("add", {"a": i, "b": 0}), JobRequest("double", {})], pass_result="prev")
        for i in (1, 2, 3)
    ]
    gid = harness.queue.group(chains, on_success=JobRequest("echo", {}))
    harness.drain()
    view = harness.queue.workflow(gid)
    assert (view.state, view.total, view.finished) == ("succeeded", 3, 3)
    summary = harness.queue.get(view.callbacks["on_success"][0]).result["results"]
    assert sorted(summary["results"].values()) == [2, 4, 6]


def test_a_group_whose_callback_is_a_chain(harness):
    gid = harness.queue.group(
        adds(3),
        on_success=Chain([JobRequest("echo", {}), JobRequest("double", {"value": 5})]),
    )
    harness.drain()
    view = harness.queue.workflow(gid)
    first = harness.queue.get(view.callbacks["on_success"][0])
    assert first.status is F and sorted(first.result["results"]["results"].values()) == [1, 2, 3]
    later = [j for j in harness.queue.workflow(gid).callbacks.values()]
    assert later and all(status == "finished" for _, status in later)


def test_a_failed_child_chain_fails_its_group_and_cancels_its_rest(harness):
    bad = Chain([JobRequest("fail_always", {}), JobRequest("double", {}, job_id="after-bad")])
    gid = harness.queue.group(
        [*adds(2), bad], on_success=JobRequest("echo", {}), on_failure=JobRequest("echo", {})
    )
    harness.drain()
    view = harness.queue.workflow(gid)
    assert (view.state, view.finished, view.failed, view.is_final) == ("failed", 2, 1, True)
    assert view.failures == {"after-bad": "failed"}  # the chain, by its last job's id
    assert harness.queue.get("after-bad").status is C


def test_results_past_the_budget_are_counted_not_kept(make_harness):
    harness = make_harness(max_result_bytes=400)
    gid = harness.queue.group(
        [JobRequest("big_result", {"size": 90}) for _ in range(6)], on_success=JobRequest("summarize", {})
    )
    harness.drain()
    view = harness.queue.workflow(gid)
    summary = harness.queue.get(view.callbacks["on_success"][0]).result
    assert view.truncated and summary["truncated"] and 0 < summary["kept"] < 6
    assert summary["counts"]["finished"] == 6


def test_an_unknown_callback_is_refused_and_nothing_is_written(harness):
    before = _written(harness)
    with pytest.raises(UnknownJobError):
        harness.queue.group(adds(3), on_success=JobRequest("no_such_callback", {}))
    with pytest.raises(InvalidOptionError):
        harness.queue.group([JobRequest("add", {"a": 1, "b": 1}, depends_on="x")])
    with pytest.raises(WorkflowError):
        harness.queue.group([])
    with pytest.raises(WorkflowError):
        harness.queue.chain(
            [
                JobRequest("add", {"a": 1, "b": 1}, job_id="same"),
                JobRequest("add", {"a": 1, "b": 1}, job_id="same"),
            ]
        )
    with pytest.raises(InvalidOptionError):
        harness.queue.group(adds(1), policy="maybe")  # type: ignore[arg-type]
    assert _written(harness) == before


def test_a_live_job_id_is_refused_whole(harness):
    harness.queue.enqueue("add", {"a": 1, "b": 1}, job_id="taken")
    before = _written(harness)
    with pytest.raises(WorkflowError, match="taken"):
        harness.queue.group([*adds(2), JobRequest("add", {"a": 1, "b": 1}, job_id="taken")])
    assert _written(harness) == before


def test_a_group_id_is_an_idempotency_key(harness):
    first = harness.queue.group(adds(2), group_id="batch-42")
    written = _written(harness)
    assert harness.queue.group(adds(2), group_id="batch-42") == first == "batch-42"
    assert _written(harness) == written
    with pytest.raises(WorkflowNotFoundError):
        harness.queue.workflow("no-such-group")


def _written(harness) -> object:
    if isinstance(harness.queue, InMemoryQueue):
        return len(harness.queue.store.jobs), len(harness.queue.store.workflows.records)
    return own_keys(harness.r)
