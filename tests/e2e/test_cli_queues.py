"""`taskq info`, `failed ...`, `worker`, `demo`: the console script against Redis and real workers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.inprocess import drain
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.e2e


def test_info_counts_every_state_and_lists_the_workers(taskq, settings, r):
    queue = RQQueue(r, settings)
    queue.enqueue("add", {"a": 1, "b": 1}, priority="low")
    drain(settings, r)
    queue.enqueue("fail_always", {}, retry=0, priority="low")
    drain(settings, r)
    queue.enqueue("add", {"a": 1, "b": 1}, delay=60)
    queue.cancel(queue.enqueue("add", {"a": 1, "b": 1}, delay=60))
    slow = queue.enqueue("sleep", {"seconds": 30}, priority="high")
    with WorkerProcess(settings, name="info-worker") as worker:
        wait_until(lambda: queue.get(slow).status.value == "started", what="the slow job to start")
        queue.enqueue("add", {"a": 1, "b": 1}, priority="high")
        data = taskq("info", "--json").json()
        table = taskq("info")
        queue.stop(slow)
    counts = {q["queue"]: q for q in data["queues"]}
    assert {k: counts["high"][k] for k in ("queued", "started")} == {"queued": 1, "started": 1}
    assert counts["high"]["oldest_queued_age"] >= 0
    assert {k: counts["default"][k] for k in ("scheduled", "canceled")} == {"scheduled": 1, "canceled": 1}
    assert {k: counts["low"][k] for k in ("finished", "failed")} == {"finished": 1, "failed": 1}
    (shown,) = [w for w in data["workers"] if w["name"] == "info-worker"]
    assert (shown["pid"], shown["state"], shown["current_job"]) == (worker.pid, "busy", slow)
    assert table.code == 0
    lines = table.out.splitlines()
    header = next(line for line in lines if "scheduled" in line).split()
    states = ["queued", "scheduled", "deferred", "started", "finished", "failed", "canceled"]
    assert header == ["queue", *states, "oldest"]
    low = next(line for line in lines if line.split()[:1] == ["low"]).split()
    assert low[1:8] == ["0", "0", "0", "0", "1", "1", "0"]
    (worker_line,) = [line for line in lines if "info-worker" in line]
    assert str(worker.pid) in worker_line and "busy" in worker_line and slow in worker_line


def test_failed_list_show_requeue_purge(taskq, settings, r, tmp_path):
    queue = RQQueue(r, settings)
    flaky = queue.enqueue("fail_then_succeed", {"path": str(tmp_path / "runs"), "failures": 1}, retry=0)
    doomed = [queue.enqueue("fail_always", {"message": f"boom {i}"}, retry=0) for i in range(2)]
    drain(settings, r)

    listed = taskq("failed", "list", "--json").json()
    assert [job["id"] for job in listed] == [*reversed(doomed), flaky]  # newest first
    assert listed[0]["error"] == "ValueError: boom 1"
    table = taskq("failed", "list")
    assert table.code == 0 and all(job_id in table.out for job_id in (flaky, *doomed))

    shown = taskq("failed", "show", flaky)
    assert shown.code == 0 and "Traceback (most recent call last)" in shown.out
    assert "RuntimeError: failing on purpose, run 1" in shown.out
    assert taskq("failed", "show", flaky, "--json").json()["traceback"].startswith("Traceback")

    requeued = taskq("failed", "requeue", flaky)
    assert (requeued.code, requeued.out) == (0, f"requeued {flaky} on queue default\n")
    with WorkerProcess(settings):
        assert queue.wait(flaky, timeout=15).status.value == "finished"
    assert "give job ids, or --all" in taskq("failed", "requeue").err
    assert taskq("failed", "requeue", "--all", "--queue", "high").out == "requeued 0 failed jobs\n"

    refused = taskq("failed", "purge", input="n\n")
    assert refused.code == 1 and "delete 2 failed jobs for good?" in refused.out
    assert len(taskq("failed", "list", "--json").json()) == 2
    purged = taskq("failed", "purge", "--yes")
    assert (purged.code, purged.out) == (0, "purged 2 failed jobs\n")
    assert taskq("failed", "list").out.strip() == "failed jobs: none"
    assert not r.exists(*(f"rq:job:{job_id}" for job_id in doomed))


def test_worker_command_is_the_worker(taskq, settings, r):
    queue = RQQueue(r, settings)
    ids = [queue.enqueue("add", {"a": i, "b": 1}) for i in range(3)]
    run = taskq("worker", "--burst", "--mode", "inline", "--name", "cli-worker")
    assert run.code == 0, run.err
    assert [queue.get(job_id).result for job_id in ids] == [1, 2, 3]
    assert "worker started name=cli-worker" in run.err


def test_demo_runs_the_main_flow(taskq):
    run = taskq("demo", env={"LOG_LEVEL": "WARNING"}, timeout=90)
    assert run.code == 0, run.out + run.err
    assert "stopped the worker (exit 0)" in run.out
    assert run.out.count(" finished ") >= 4


def test_info_shows_jobs_waiting_for_a_worker_that_knows_them_and_who_knows_what(taskq, settings, r):
    later = ("added_later", "tests.support.jobs.added_later")
    new = replace(settings, extra_jobs=(*settings.extra_jobs, later))
    queue = RQQueue(r, new)
    with WorkerProcess(settings, name="old-worker"):
        job_id = queue.enqueue("added_later", {"value": "x"})
        wait_until(lambda: r.hexists(f"rq:job:{job_id}", "taskq_unknown_since"), what="a hand-back")
        env = {"QUEUE_EXTRA_JOBS": new.to_env()["QUEUE_EXTRA_JOBS"]}  # the operator's CLI is the new deploy's
        data = taskq("info", "--json", env=env).json()
        table = taskq("info", env=env)
    (waiting,) = data["waiting_for_worker"]
    assert (waiting["id"], waiting["job_name"], waiting["queue"], waiting["version"]) == (
        job_id, later[1], "default", 1,
    )  # fmt: skip
    assert waiting["since"] and waiting["status"] in ("scheduled", "queued")
    (worker,) = [w for w in data["workers"] if w["name"] == "old-worker"]
    assert worker["jobs"]["tests.support.jobs.add"] == 1 and later[1] not in worker["jobs"]
    assert table.code == 0, table.err
    assert "waiting for a worker that knows them (1)" in table.out and job_id in table.out
    assert "jobs the live workers know" in table.out
    (row,) = [line for line in table.out.splitlines() if line.split()[:1] == [later[1]]]
    assert "no live worker" in row


def test_info_shows_which_queues_each_worker_serves(taskq, settings):
    with WorkerProcess(settings, "--queues", "high,default", name="two-queues"):
        table = taskq("info")
        data = taskq("info", "--json").json()
    header = next(line for line in table.out.splitlines() if "last heartbeat" in line).split()
    assert header[:5] == ["name", "host", "pid", "state", "queues"], table.out
    (row,) = [line for line in table.out.splitlines() if line.lstrip().startswith("two-queues")]
    assert row.split()[4] == "high,default"
    assert [w["queues"] for w in data["workers"] if w["name"] == "two-queues"] == [["high", "default"]]


def test_failed_list_keeps_one_row_per_job_and_show_has_the_whole_error(taskq, settings, r):
    queue = RQQueue(r, settings)
    huge = "x" * 20_000  # stored errors are bounded at 64 KiB
    job_id = queue.enqueue("fail_always", {"message": f"too long {huge} end"}, retry=0)
    drain(settings, r)
    listed = taskq("failed", "list")
    assert listed.code == 0 and len(listed.out.splitlines()) < 10, listed.out[:500]
    assert len([line for line in listed.out.splitlines() if job_id in line]) == 1
    assert "ValueError: too long xxx" in " ".join(listed.out.split()) and "…" in listed.out
    assert len(listed.out) < 2000
    shown = taskq("failed", "show", job_id)
    assert f"too long {huge} end" in shown.out.replace("\n", "")


def test_requeue_as_a_renamed_job_runs_it_under_its_new_path(taskq, settings, r):
    """Issue 18 item 9: a job queued under a path that was renamed since fails until requeued `--as`."""
    old = replace(settings, extra_jobs=(*settings.extra_jobs, ("old_add", "tests.support.renamed.add")))
    job_id = RQQueue(r, old).enqueue("old_add", {"a": 2, "b": 3}, retry=0)
    # Today's workers no longer know the old path; with no grace they fail it at once ("job not
    # found") instead of handing it back for an older worker that might still know it.
    today = replace(settings, unknown_job_grace=0)
    drain(today, r)
    queue = RQQueue(r, settings)
    assert "job not found" in queue.get(job_id).error
    assert taskq("failed", "requeue", job_id).code == 0
    drain(today, r)
    assert queue.get(job_id).status.value == "failed"  # the same old path: failed again

    unknown = taskq("failed", "requeue", job_id, "--as", "ad")
    assert unknown.code == 1 and "unknown job 'ad'" in unknown.err and "did you mean 'add'" in unknown.err
    assert taskq("failed", "requeue", "--all", "--as", "add").code == 1
    renamed = taskq("failed", "requeue", job_id, "--as", "add")
    assert renamed.out == f"requeued {job_id} on queue default as tests.support.jobs.add\n", renamed.err
    drain(today, r)
    view = queue.get(job_id)
    assert (view.status.value, view.result, view.job_name) == ("finished", 5, "tests.support.jobs.add")
