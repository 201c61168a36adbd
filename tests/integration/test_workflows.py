"""Chains and groups (issue 14) with real worker processes on the test Redis: results passed along,
a 500-child group's callback run once, members that expire unclaimed or end outside taskq settled
by the sweep, a group whose callback starts a chain, a worker killed mid-group."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app.infrastructure.queue.port import JobRequest, JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.workflows import Chain, Edge
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


@contextmanager
def workers(settings, count: int, *args: str) -> Iterator[list[WorkerProcess]]:
    """Worker processes logging warnings only: hundreds of jobs' INFO lines would fill the pipe
    their output waits in (nothing reads it until they stop), and block them."""
    started: list[WorkerProcess] = []
    try:
        for _ in range(count):
            started.append(WorkerProcess(settings, *args, env={"LOG_LEVEL": "WARNING"}).start())
        yield started
    finally:
        for worker in started:
            worker.stop()


def ledger(r, key: str) -> tuple[int, object]:
    """How often the `collect` callback ran under `key`, and what it was last given."""
    runs = int(r.get(f"taskq:test:{key}:runs") or 0)
    raw = r.get(f"taskq:test:{key}:input")
    return runs, json.loads(raw) if raw else None


def test_a_chain_of_three_passes_results_along_across_workers(settings, r):
    queue = RQQueue(r, settings)
    ids = queue.chain(
        [JobRequest("add", {"a": 2, "b": 3}), JobRequest("double", {}), JobRequest("double", {})],
        pass_result="prev",
    )
    with workers(settings, 2, "--mode", "inline"):
        assert queue.wait(ids[-1], timeout=20).result == 20
        assert queue.wait_workflow(ids[-1], timeout=10).state == "succeeded"
    assert [queue.get(i).result for i in ids] == [5, 10, 20]


def test_a_500_child_group_runs_its_callback_once_with_500_results(settings, r):
    queue = RQQueue(r, settings)
    gid = queue.group(
        [JobRequest("add", {"a": i, "b": 0}) for i in range(500)],
        on_success=JobRequest("collect", {"key": "g500"}),
        on_complete=JobRequest("collect", {"key": "g500-complete"}),
    )
    with workers(settings, 2, "--mode", "pool"):
        view = queue.wait_workflow(gid, timeout=60)
        callback = view.callbacks["on_success"][0]
        assert queue.wait(callback, timeout=20).status is JobStatus.FINISHED
        queue.wait(view.callbacks["on_complete"][0], timeout=20)
    assert (view.state, view.finished, view.total) == ("succeeded", 500, 500)
    runs, given = ledger(r, "g500")
    assert runs == 1 and ledger(r, "g500-complete")[0] == 1
    assert len(given["results"]) == 500 and sorted(given["results"].values()) == list(range(500))
    assert given["counts"]["finished"] == 500 and given["state"] == "succeeded"


def test_a_member_that_expires_unclaimed_is_settled_by_the_sweep(settings, r):
    """Its queue is paused, so no claim ever pops its id: the reaper's sweep finds its hash gone."""
    queue = RQQueue(r, settings)
    queue.pause("low")
    gid = queue.group(
        [JobRequest("add", {"a": 1, "b": 1}), JobRequest("add", {"a": 1, "b": 1}, priority="low", ttl=1)],
        on_success=JobRequest("collect", {"key": "ok"}),
        on_failure=JobRequest("collect", {"key": "expired"}),
    )
    with workers(settings, 1, "--mode", "inline"):
        view = queue.wait_workflow(gid, timeout=20)
        queue.wait(view.callbacks["on_failure"][0], timeout=10)
    assert (view.state, view.finished, view.expired) == ("failed", 1, 1)
    assert ledger(r, "expired")[0] == 1 and ledger(r, "ok")[0] == 0
    assert queue.get(view.callbacks["on_success"][0]).status is JobStatus.CANCELED


def test_a_member_ended_outside_taskq_is_settled_by_the_sweep(settings, r):
    """rq's own tools, or a hand edit, end a job without our scripts: the sweep reads its status."""
    queue = RQQueue(r, settings)
    queue.pause("low")
    gid = queue.group(
        [JobRequest("add", {"a": 1, "b": 1}, priority="low", job_id="by-hand")],
        policy="continue",
        on_complete=JobRequest("collect", {"key": "by-hand"}),
    )
    r.hset("rq:job:by-hand", "status", "failed")
    with workers(settings, 1, "--mode", "inline", "--queues", "high,default"):
        view = queue.wait_workflow(gid, timeout=20)
        queue.wait(view.callbacks["on_complete"][0], timeout=10)
    assert (view.state, view.failures) == ("succeeded", {"by-hand": "failed"})
    assert ledger(r, "by-hand")[1]["failures"] == {"by-hand": "failed"}


def test_a_group_whose_callback_starts_a_chain(settings, r):
    queue = RQQueue(r, settings)
    gid = queue.group(
        [JobRequest("add", {"a": i, "b": 0}) for i in (1, 2, 3)],
        on_success=JobRequest("start_chain", {"values": [1, 2]}),
    )
    with workers(settings, 2, "--mode", "inline"):
        view = queue.wait_workflow(gid, timeout=20)
        chain_ids = queue.wait(view.callbacks["on_success"][0], timeout=20).result
        assert queue.wait(chain_ids[-1], timeout=20).result == 48  # 1 + 2 + 3, doubled three times
        assert queue.wait_workflow(chain_ids[-1], timeout=10).state == "succeeded"


def test_a_group_of_chains_with_a_chain_callback(settings, r):
    """The ingestion pipeline's shape: per document fetch -> chunk -> index, then one callback chain."""
    queue = RQQueue(r, settings)
    documents = [
        Chain([JobRequest("add", {"a": d, "b": 0}), JobRequest("double", {})], pass_result="prev")
        for d in range(20)
    ]
    gid = queue.group(
        [*documents, Edge(JobRequest("fail_always", {}), "ignore")],
        on_success=Chain([JobRequest("collect", {"key": "pipeline"}), JobRequest("double", {"value": 1})]),
    )
    with workers(settings, 2, "--mode", "inline"):
        view = queue.wait_workflow(gid, timeout=30)
        first = view.callbacks["on_success"][0]
        queue.wait(first, timeout=20)
    assert (view.state, view.finished, view.ignored) == ("succeeded", 20, 1)
    runs, given = ledger(r, "pipeline")
    assert runs == 1 and sorted(given["results"].values()) == [2 * d for d in range(20)]


def test_a_worker_killed_mid_group_loses_nothing_and_the_callback_runs_once(settings, r):
    queue = RQQueue(r, settings)
    gid = queue.group(
        [JobRequest("sleep", {"seconds": 0.05}, retry=3) for _ in range(60)],
        on_success=JobRequest("collect", {"key": "killed"}),
    )
    with workers(settings, 2, "--mode", "fork") as started:
        wait_until(lambda: queue.workflow(gid).finished >= 5, timeout=20)
        started[0].signal(signal.SIGKILL)  # its job is taken back by the other worker's reaper
        view = queue.wait_workflow(gid, timeout=60)
        queue.wait(view.callbacks["on_success"][0], timeout=20)
    assert (view.state, view.finished) == ("succeeded", 60)
    assert ledger(r, "killed")[0] == 1
