"""`taskq jobs|enqueue|status|cancel|stop`, run as the console script against Redis and real workers."""

from __future__ import annotations

import pytest

from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.e2e


def one_line_error(run, *fragments: str) -> None:
    assert run.code == 1, (run.code, run.out, run.err)
    assert run.out == "" and run.err.count("\n") == 1 and run.err.startswith("taskq: "), run.err
    assert "Traceback" not in run.err
    for fragment in fragments:
        assert fragment in run.err, run.err


def test_jobs_lists_each_registered_job_and_whether_it_imports_here(taskq):
    shown = taskq("jobs")
    assert shown.code == 0, shown.err
    assert "ingest_doc" in shown.out and "tests.support.jobs.add" in shown.out
    broken = taskq("jobs", "--json", env={"QUEUE_EXTRA_JOBS": "broken=tests.support.broken_job.job"})
    assert broken.code == 5  # Exit.BROKEN_JOB_PATH, as a worker here would exit
    rows = {row["name"]: row for row in broken.json()}
    assert rows["ingest_doc"]["resolves"] is True
    assert rows["broken"]["resolves"] is False
    assert "taskq_dependency_that_is_not_installed" in rows["broken"]["problem"]


def test_enqueue_takes_key_value_as_strings_and_key_colon_equals_as_json_and_prints_the_id(
    taskq, settings, r
):
    made = taskq(
        "enqueue",
        "echo",
        "n=3",
        "ok:=true",
        "name=ada",
        "tags:=[1, 2]",
        'quoted:="7"',
        "empty=",
        "eq=a=b",
        "m:=3",
        "--job-id",
        "e1",
    )
    assert (made.code, made.out) == (0, "e1\n"), made.err
    view = RQQueue(r, settings).get("e1")
    assert view.params == {
        "n": "3", "ok": True, "name": "ada", "tags": [1, 2], "quoted": "7", "empty": "", "eq": "a=b", "m": 3,
    }  # fmt: skip
    assert view.queue == "default" and view.status.value == "queued"
    bad = taskq("enqueue", "echo", "n:=three")
    assert bad.code == 2 and "the value after := is not JSON" in bad.err and "Traceback" not in bad.err


def test_doc_id_123_reaches_ingest_doc_as_the_string_123(taskq, settings, r):
    with WorkerProcess(settings):
        done = taskq("enqueue", "ingest_doc", "doc_id=123", "--wait", "--json")
    assert done.code == 0, done.out + done.err
    view = done.json()
    assert view["params"] == {"doc_id": "123"} and view["result"]["doc_id"] == "123"
    assert view["status"] == "finished"


def test_declared_params_are_checked_before_anything_is_written(taskq, r):
    wrong = taskq("enqueue", "ingest_doc", "doc_id:=123")
    one_line_error(wrong, "params of 'app.worker.jobs.ingest_doc.ingest_doc': field 'doc_id'", "got int 123")
    one_line_error(taskq("enqueue", "ingest_doc"), "field 'doc_id' is required")
    one_line_error(taskq("enqueue", "ingest_doc", "doc_id=1", "x=2"), "field 'x' is not declared")
    assert not list(r.scan_iter("rq:job:*"))
    listed = {row["name"]: row for row in taskq("jobs", "--json").json()}
    assert (listed["ingest_doc"]["params"], listed["ingest_doc"]["version"]) == ({"doc_id": "str"}, 1)
    assert listed["add"]["params"] is None


def test_require_worker_refuses_a_job_no_live_worker_knows(taskq, r):
    refused = taskq("enqueue", "add", "a:=1", "b:=2", "--require-worker")
    one_line_error(refused, "no live worker knows job 'tests.support.jobs.add' (params version 1)")
    assert not list(r.scan_iter("rq:job:*"))


def test_enqueue_options_and_status_of_a_job_not_done_yet(taskq):
    made = taskq("enqueue", "add", "a:=1", "b:=2", "--priority", "high", "--delay", "60", "--json")
    job_id = made.json()["job_id"]
    shown = taskq("status", job_id)
    assert shown.code == 4
    assert "scheduled" in shown.out and "high" in shown.out and job_id in shown.out
    view = taskq("status", job_id, "--json").json()
    assert (view["status"], view["queue"], view["params"]) == ("scheduled", "high", {"a": 1, "b": 2})
    gave_up = taskq("enqueue", "add", "a:=1", "b:=2", "--wait", "--timeout", "0.5")  # no worker runs
    assert gave_up.code == 4 and "still queued after waiting 0.5 s" in gave_up.err
    assert "queued" in gave_up.out and "Traceback" not in gave_up.err


def test_enqueue_wait_and_status_exit_codes_follow_the_job(taskq, settings):
    with WorkerProcess(settings):
        ok = taskq("enqueue", "add", "a:=2", "b:=3", "--wait")
        job_id = ok.out.splitlines()[0]
        assert ok.code == 0 and "finished" in ok.out and "5" in ok.out, ok.out + ok.err
        bad = taskq("enqueue", "fail_permanently", "message=no way", "--wait", "--json")
        assert bad.code == 3 and bad.json()["error"] == "app.worker.runtime.PermanentError: no way"
    finished = taskq("status", job_id, "--json")
    assert (finished.code, finished.json()["result"], finished.json()["attempts"]) == (0, 5, 1)
    assert taskq("status", bad.json()["id"]).code == 3


def test_user_errors_are_one_line_without_a_traceback(taskq):
    one_line_error(taskq("enqueue", "ecoh", "x=1"), "unknown job 'ecoh'", "did you mean 'echo'?")
    one_line_error(taskq("status", "no-such-job"), "job 'no-such-job' not found")
    one_line_error(taskq("status", "not/an/id"), "job ids must match")
    one_line_error(taskq("enqueue", "add", "a:=1", "b:=2", "--job-id", "bad id"), "job ids must match")
    one_line_error(taskq("info", env={"QUEUE_RETRY_MAX": "lots"}), "QUEUE_RETRY_MAX='lots'")
    usage = taskq("enqueue", "add", "a")
    assert usage.code == 2 and "expected KEY=VALUE or KEY:=JSON, got 'a'" in usage.err
    assert "Traceback" not in usage.err


def test_redis_unreachable_names_the_url_without_its_password(taskq):
    url = "redis://ops:hunter2-secret@127.0.0.1:1/0"
    run = taskq("info", env={"REDIS_URL": url, "REDIS_RETRY_SECONDS": "0.1"})
    one_line_error(run, "Redis at redis://ops@127.0.0.1:1/0 is unavailable")
    assert "hunter2" not in run.err
    flag = taskq("status", "x", "--url", url, env={"REDIS_RETRY_SECONDS": "0.1"})
    one_line_error(flag, "127.0.0.1:1")
    assert "hunter2" not in flag.err


def test_url_option_wins_over_redis_url(taskq, redis_url):
    run = taskq("--url", redis_url, "info", "--json", env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert run.code == 0, run.err
    assert [q["queue"] for q in run.json()["queues"]][:3] == ["high", "default", "low"]


def test_cancel_a_waiting_job_and_refuse_a_finished_one(taskq, settings, r):
    queue = RQQueue(r, settings)
    later = queue.enqueue("add", {"a": 1, "b": 1}, delay=60)
    canceled = taskq("cancel", later)
    assert (canceled.code, canceled.out) == (0, f"canceled {later}\n")
    assert taskq("status", later, "--json").json()["status"] == "canceled"
    one_line_error(taskq("cancel", later), f"cannot cancel job '{later}': it is canceled")


def test_stop_a_running_job(taskq, settings, r):
    queue = RQQueue(r, settings)
    slow = queue.enqueue("sleep", {"seconds": 30})
    with WorkerProcess(settings):
        wait_until(lambda: queue.get(slow).status.value == "started", what="the job to start")
        stopped = taskq("stop", slow)
        assert stopped.code == 0 and stopped.out.startswith("asked worker test-"), stopped.out + stopped.err
        view = queue.wait(slow, timeout=10)
    assert view.status.value == "stopped"
    assert taskq("status", slow).code == 3
    one_line_error(taskq("stop", slow), "it is stopped")


def test_a_key_given_twice_is_refused_not_silently_the_last(taskq, r):
    run = taskq("enqueue", "add", "a=1", "a=2", "b=3")
    assert (
        run.code == 2 and "'a' is given twice" in run.err and run.err.splitlines()[-1].startswith("taskq: ")
    )
    assert not r.keys("rq:job:*")


def test_python_dash_m_app_cli_main_is_the_taskq_command():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and "See and steer the taskq queues" in done.stdout
