"""`taskq group ID [--watch] [--json]` (issue 14): a group's counts, its outcome, its callbacks,
a live bar in a terminal; exit 0 succeeded, 3 failed, 4 not over yet."""

from __future__ import annotations

import pexpect
import pytest

from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.workflows import Edge
from tests.e2e.test_cli_watch import GAP, watch
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.e2e


def test_group_json_counts_members_and_exits_4_while_they_wait(settings, r, taskq):
    queue = RQQueue(r, settings)
    gid = queue.group(
        [JobRequest("add", {"a": i, "b": 1}) for i in range(4)], on_success=JobRequest("echo", {})
    )
    run = taskq("group", gid, "--json")
    assert run.code == 4, run.err
    found = run.json()
    assert (found["state"], found["total"], found["queued"], found["finished"]) == ("open", 4, 4, 0)
    assert found["callbacks"]["on_success"][1] == "deferred"
    info = taskq("info", "--json")  # the callback is a deferred job like any other
    assert info.code == 0, info.err
    by_queue = {row["queue"]: row for row in info.json()["queues"]}
    assert (by_queue["default"]["queued"], by_queue["default"]["deferred"]) == (4, 1)


def test_group_watch_shows_a_live_bar_then_the_outcome(settings, r):
    queue = RQQueue(r, settings)
    children = [JobRequest("sleep", {"seconds": 0.2}) for _ in range(8)]
    gid = queue.group(
        [*children, Edge(JobRequest("fail_always", {}), "continue")], on_complete=JobRequest("echo", {})
    )
    child = watch(settings, "group", gid, "--watch")
    try:
        child.expect(f"{gid} open")
        with WorkerProcess(settings, "--mode", "inline"):
            child.expect(rf"[1-8]/9{GAP}done [1-8]")  # the bar moves while the children run
            child.expect(rf"state{GAP}succeeded")
            child.expect(rf"on_complete{GAP}\w+ (queued|started|finished)")
            child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_a_failed_group_exits_3_and_an_unknown_one_1(settings, r, taskq):
    queue = RQQueue(r, settings)
    gid = queue.group([JobRequest("fail_always", {})], on_failure=JobRequest("echo", {}))
    with WorkerProcess(settings, "--mode", "inline"):
        queue.wait_workflow(gid, timeout=20)
    run = taskq("group", gid)
    assert run.code == 3 and "failed" in run.out and "failed by" in run.out
    missing = taskq("group", "no-such-group")
    assert missing.code == 1 and "taskq: workflow 'no-such-group' not found" in missing.err
