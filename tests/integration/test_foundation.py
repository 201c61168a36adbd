"""Issue 2: the spec's snippet, real worker processes, clear errors, nothing half-written."""

from __future__ import annotations

import pickle
import signal
import socket
import threading
from dataclasses import replace

import pytest
import redis
import rq

from app.infrastructure.queue.errors import (
    InvalidParamsError,
    JobNotFoundError,
    PayloadTooLargeError,
    QueueError,
    QueueTimeoutError,
    QueueUnavailableError,
    SerializationError,
    UnknownJobError,
)
from app.infrastructure.queue.job_paths import INGEST_DOC_JOB
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.servers import free_port
from tests.support.inprocess import drain
from tests.support.processes import WorkerProcess, wait_until
from tests.support.redis_env import all_keys

pytestmark = pytest.mark.integration


def test_spec_snippet_runs_verbatim_and_a_worker_process_runs_the_job(settings, r):
    redis_conn = r
    queue = RQQueue(redis_conn, settings)
    job_id = queue.enqueue(job_name=INGEST_DOC_JOB, params={"doc_id": "123"})
    assert isinstance(job_id, str) and job_id
    with WorkerProcess(settings):
        view = queue.wait(job_id, timeout=20)
    assert view.status.value == "finished", view.error
    assert view.result["chunks"] == 3 and view.result["doc_id"] == "123"
    assert (settings.ingested_dir / "123.jsonl").exists()
    assert view.progress is not None and view.progress.done == view.progress.total == 3


def test_params_named_like_rq_options_reach_the_job_untouched(settings, r):
    queue = RQQueue(r, settings)
    params = {
        "job_timeout": 1,
        "description": "x",
        "meta": {"m": 1},
        "ttl": 5,
        "job_id": "not-an-id!",
        "result_ttl": 0,
        "depends_on": "nobody",
        "at_front": True,
        "retry": 9,
        "timeout": 0.001,
    }
    job_id = queue.enqueue("echo", params)
    with WorkerProcess(settings, "--burst") as worker:
        assert worker.wait() == 0
    assert queue.get(job_id).result == params


def rejected(queue, r, call):
    before = all_keys(r)
    with pytest.raises(QueueError) as caught:
        call(queue)
    assert all_keys(r) == before, "a rejected enqueue left keys behind"
    return caught.value


def test_each_enqueue_error_is_raised_and_nothing_is_written(settings, r):
    queue = RQQueue(r, replace(settings, max_payload_bytes=4096))
    queue.enqueue("add", {"a": 1, "b": 2})  # the queue exists; a rejected enqueue must not touch it
    error = rejected(queue, r, lambda q: q.enqueue("ingest_dco", {"doc_id": "1"}))
    assert isinstance(error, UnknownJobError) and error.suggestions[0] == INGEST_DOC_JOB  # the closest first
    assert isinstance(rejected(queue, r, lambda q: q.enqueue("echo", ["doc_id"])), InvalidParamsError)
    assert isinstance(rejected(queue, r, lambda q: q.enqueue("echo", {3: "x"})), InvalidParamsError)
    error = rejected(queue, r, lambda q: q.enqueue("echo", {"lock": threading.Lock()}))
    assert isinstance(error, SerializationError) and error.key == "lock"
    error = rejected(queue, r, lambda q: q.enqueue("echo", {"blob": b"x" * 5000}))
    assert isinstance(error, PayloadTooLargeError) and error.limit == 4096


def test_job_not_found(settings, r):
    queue = RQQueue(r, settings)
    with pytest.raises(JobNotFoundError) as caught:
        queue.get("no-such-job")
    assert caught.value.job_id == "no-such-job"


def test_unreachable_redis_is_our_error_after_a_bounded_retry(settings):
    from app.infrastructure.redis.connection import connect

    url = f"redis://app:hunter2@127.0.0.1:{free_port()}/0"
    local = replace(settings, redis_url=url, redis_retry_seconds=0.3)
    queue = RQQueue(connect(local), local)
    with pytest.raises(QueueUnavailableError) as caught:
        queue.enqueue("add", {"a": 1, "b": 2})
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_redis_that_does_not_answer_times_out_as_our_error(settings):
    from app.infrastructure.redis.connection import connect

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    try:
        local = replace(
            settings,
            redis_url=f"redis://127.0.0.1:{listener.getsockname()[1]}/0",
            redis_socket_timeout=0.2,
            redis_retry_seconds=0.1,
        )
        queue = RQQueue(connect(local), local)
        with pytest.raises(QueueTimeoutError) as caught:
            queue.enqueue("add", {"a": 1, "b": 2})
        assert isinstance(caught.value.__cause__, redis.exceptions.TimeoutError)
    finally:
        listener.close()


def test_a_hand_written_job_naming_os_system_never_runs(settings, r, tmp_path):
    marker = tmp_path / "pwned"
    job_id = "evil-os-system"
    data = pickle.dumps(("os.system", None, (f"touch {marker}",), {}))
    r.hset(
        f"rq:job:{job_id}",
        mapping={
            "status": "queued",
            "origin": "default",
            "data": data,
            "description": "evil",
            "created_at": "2026-01-01T00:00:00.000000Z",
        },
    )
    r.rpush("rq:queue:default", job_id)
    # The same through rq's own API, the way anyone with Redis access would try it.
    via_rq = rq.Queue("default", connection=r).enqueue("os.system", f"touch {marker}").id
    no_grace = replace(settings, unknown_job_grace=0)  # fail it at first sight: no deploy is coming
    with WorkerProcess(no_grace, "--burst") as worker:
        assert worker.wait() == 0
    assert not marker.exists()
    queue = RQQueue(r, settings)
    for jid in (job_id, via_rq):
        view = queue.get(jid)
        assert view.status.value == "failed"
        assert view.error == "job not found: no live worker knows os.system"


def test_a_broken_job_module_stops_the_worker_at_start_with_its_real_cause(settings):
    broken = replace(settings, extra_jobs=(*settings.extra_jobs, ("broken", "tests.support.broken_job.job")))
    worker = WorkerProcess(broken).start(wait_ready=False)
    assert worker.wait() == 5  # Exit.BROKEN_JOB_PATH: a deploy error, not click's usage error 2
    assert "tests.support.broken_job.job" in worker.output
    assert "taskq_dependency_that_is_not_installed" in worker.output
    assert worker.output.count("broken job path") == 1


def test_sigterm_finishes_the_current_job_then_exits_zero(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 1.5})
    with WorkerProcess(settings) as worker:
        wait_until(lambda: queue.get(job_id).status.value == "started", what="job to start")
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    view = queue.get(job_id)
    assert view.status.value == "finished" and view.result == 1.5


def test_burst_drains_all_queues_and_exits(settings, r):
    queue = RQQueue(r, settings)
    ids = [
        queue.enqueue("add", {"a": i, "b": i}, priority=p) for i, p in enumerate(["low", "default", "high"])
    ]
    with WorkerProcess(settings, "--burst") as worker:
        assert worker.wait() == 0
    assert [queue.get(i).result for i in ids] == [0, 2, 4]


def test_a_failing_job_keeps_its_traceback(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("fail_always", {"message": "broken on purpose"})
    with WorkerProcess(settings, "--burst") as worker:
        worker.wait()
    view = queue.get(job_id)
    assert view.status.value == "failed"
    assert view.error == "ValueError: broken on purpose"
    result = rq.job.Job.fetch(job_id, connection=r).latest_result()
    assert "Traceback" in result.exc_string and "fail_always" in result.exc_string


def test_rq_reads_what_we_write_and_its_worker_refuses_to_run_it(settings, r):
    """rq's readers read our jobs; a plain rq worker fails them without running them (issue 19
    item 2: taskq's marker in the call's `instance` slot); our worker runs them."""
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("add", {"a": 20, "b": 22}, meta={"who": "test"}, retry=0)
    job = rq.job.Job.fetch(job_id, connection=r)
    assert job.func_name == "tests.support.jobs.add" and job.kwargs == {"a": 20, "b": 22}
    assert job.get_status() == "queued" and job.meta == {"who": "test"}
    assert rq.Queue("default", connection=r).job_ids == [job_id]
    rq.SimpleWorker(["default"], connection=r).work(burst=True)
    assert rq.job.Job.fetch(job_id, connection=r).get_status() == "failed"
    assert "'str' object has no attribute 'tests.support.jobs.add'" in queue.get(job_id).error
    ours = queue.enqueue("add", {"a": 20, "b": 22})
    drain(settings, r)
    assert queue.get(ours).result == 42
