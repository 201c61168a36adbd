"""Issue 15: a rolling deploy, with real worker processes. A job an old worker does not know (a new
name, another params version) is handed back unfailed until a worker that knows it runs it; after
the grace it fails with the spec's "job not found", and requeues once the fix is deployed."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.errors import NoWorkerError
from app.infrastructure.queue.job_params import JobParams
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.jobs import LATER_JOB, TEST_JOBS
from tests.support.processes import WorkerProcess, wait_until
from tests.support.redis_env import own_keys

pytestmark = pytest.mark.integration

LATER = LATER_JOB[1]
ADD = "tests.support.jobs.add"


def deployed(settings):
    """The new deploy's settings: the job it adds is registered."""
    return replace(settings, extra_jobs=(*TEST_JOBS, LATER_JOB))


def declared_worker(settings, params: dict, *args: str, name: str | None = None) -> WorkerProcess:
    """A real worker whose job_paths.PARAMS says `params` (tests/support/declared_worker.py)."""
    worker = WorkerProcess(settings, *args, env={"TASKQ_TEST_PARAMS": json.dumps(params)}, name=name)
    worker.args[worker.args.index("app.worker")] = "tests.support.declared_worker"
    return worker


def hold(seconds: float, check) -> int:
    """Poll `check` (which asserts) for `seconds`: the state holds over the whole span. Polls made."""
    end, polls = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        check()
        polls += 1
        time.sleep(0.25)
    check()
    return polls


def test_a_job_only_new_workers_know_waits_unfailed_under_an_old_worker_then_runs(settings, r):
    new = deployed(settings)
    queue = RQQueue(r, new)
    with WorkerProcess(settings) as old:  # the old deploy: it does not know added_later
        job_id = queue.enqueue("added_later", {"value": "from the new deploy"})
        wait_until(lambda: r.hexists(f"rq:job:{job_id}", "taskq_unknown_since"), what="a hand-back")

        def unfailed() -> None:
            view = queue.get(job_id)
            assert view.status in (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.STARTED), view
            assert view.attempts <= 1 and not view.is_final  # a hand-back gives its attempt back

        hold(20, unfailed)
        # Listed while it waits (not in the moments an old worker holds it, before handing it back).
        waiting = wait_until(lambda: QueueAdmin(r, new).waiting(), what="the job listed as waiting")
        assert [(job.id, job.job_name, job.queue) for job in waiting] == [(job_id, LATER, "default")]
        assert "this worker does not know tests.support.jobs.added_later" in queue.get(job_id).error
        with WorkerProcess(new):  # the new deploy starts: it runs the job as soon as it is claimable
            done = queue.wait(job_id, timeout=30)
        assert old.process.poll() is None  # the old worker never crashed on it
    assert (done.status, done.result, done.attempts) == (JobStatus.FINISHED, "from the new deploy", 1)
    assert old.output.count("job handed back") >= 3, old.output  # every ~5 s, no busy loop
    assert "job failed" not in old.output
    assert QueueAdmin(r, new).waiting() == []


def test_after_the_grace_it_fails_with_job_not_found_and_requeues_after_the_fix(settings, r):
    old = replace(settings, unknown_job_grace=2.0)
    new = deployed(settings)
    queue = RQQueue(r, new)
    with WorkerProcess(old):
        job_id = queue.enqueue("added_later", {"value": "late"})
        failed = queue.wait(job_id, timeout=30)
    assert failed.status is JobStatus.FAILED
    assert failed.error == f"job not found: no live worker knows {LATER}"
    admin = QueueAdmin(r, new)
    assert [job.id for job in admin.failed()] == [job_id]
    assert admin.requeue(job_id) == "default"  # what `taskq failed requeue` runs
    assert not r.hexists(f"rq:job:{job_id}", "taskq_unknown_since")  # a fresh grace
    with WorkerProcess(new):
        done = queue.wait(job_id, timeout=30)
    assert (done.status, done.result) == (JobStatus.FINISHED, "late")


def test_a_worker_of_another_params_version_hands_the_job_back_to_one_of_this_version(settings, r):
    producer = JobRegistry(extra=TEST_JOBS, params={ADD: JobParams(version=2)})
    queue = RQQueue(r, settings, registry=producer)
    job_id = queue.enqueue("add", {"a": 2, "b": 3})
    assert r.hget(f"rq:job:{job_id}", "taskq_params_version") == b"2"
    with WorkerProcess(settings) as old:  # version 1 of `add`
        wait_until(lambda: r.hexists(f"rq:job:{job_id}", "taskq_unknown_since"), what="a hand-back")
        assert "does not know tests.support.jobs.add (params version 2)" in queue.get(job_id).error
        with declared_worker(settings, {ADD: {"version": 2}}):
            done = queue.wait(job_id, timeout=30)
        assert old.process.poll() is None
    assert (done.status, done.result, done.attempts) == (JobStatus.FINISHED, 5, 1)


def test_workers_publish_what_they_know_and_require_worker_refuses_what_none_does(settings, r):
    queue = RQQueue(r, deployed(settings))
    with pytest.raises(NoWorkerError, match=r"no live worker knows job 'tests\.support\.jobs\.add'"):
        queue.enqueue("add", {"a": 1, "b": 2}, require_worker=True)
    assert own_keys(r) <= {b"rq:queues"}  # nothing of the job was written
    with WorkerProcess(settings, name="old-1"), declared_worker(settings, {ADD: {"version": 2}}, name="v2"):
        workers = {w.name: w.jobs for w in QueueAdmin(r, settings).workers()}
        assert workers["old-1"][ADD] == 1 and workers["v2"][ADD] == 2 and LATER not in workers["old-1"]
        job_id = queue.enqueue("add", {"a": 1, "b": 2}, require_worker=True)
        assert queue.wait(job_id, timeout=30).result == 3
        with pytest.raises(NoWorkerError, match="added_later"):
            queue.enqueue("added_later", {"value": "x"}, require_worker=True)
        with pytest.raises(NoWorkerError, match="params version 3"):
            RQQueue(
                r, settings, registry=JobRegistry(extra=TEST_JOBS, params={ADD: JobParams(version=3)})
            ).enqueue("add", {"a": 1, "b": 2}, require_worker=True)


@pytest.mark.parametrize(
    ("params", "lines"),
    [
        (
            {ADD: {"model": "tests.support.params.WrongAddParams"}},
            ["job 'add': tests.support.jobs.add and WrongAddParams disagree: it takes no parameter 'c'; "
             "it requires 'b', which is not declared"],
        ),
        (
            {ADD: {"model": "tests.support.params.WrongAddParams"},
             "tests.support.jobs.touch": {"model": "tests.support.params.LooseTouchParams"}},
            ["job 'add': ", "job 'touch': tests.support.jobs.touch and LooseTouchParams disagree: "
             "it requires 'path', which is declared optional"],
        ),
    ],
    ids=["one job", "two jobs"],
)  # fmt: skip
def test_a_function_that_does_not_take_its_declared_params_stops_the_worker_at_start(settings, params, lines):
    worker = declared_worker(settings, params).start(wait_ready=False)
    assert worker.wait() == 5  # Exit.BROKEN_JOB_PATH: a deploy error, not to be restarted
    shown = [line for line in worker.output.splitlines() if line.startswith("taskq: job params do not fit: ")]
    assert len(shown) == len(lines), worker.output
    for line, expected in zip(shown, lines, strict=True):
        assert line.removeprefix("taskq: job params do not fit: ").startswith(expected), line
    assert "Traceback" not in worker.output


def test_declared_params_that_fit_start_the_worker(settings, r):
    fitting = {
        ADD: {"model": "tests.support.params.AddParams"},
        "tests.support.jobs.echo": {"model": "tests.support.params.EchoParams"},
    }
    with declared_worker(settings, fitting) as worker:
        assert worker.process.poll() is None  # registered and running: the preflight passed
