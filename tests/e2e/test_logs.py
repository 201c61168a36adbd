"""One structured log line per job event, from the producer and from a real worker process."""

from __future__ import annotations

import json
import logging

import pytest

from app.infrastructure.queue.port import RetryPolicy
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.e2e


def test_enqueue_logs_one_enqueued_line_per_new_job(settings, r, caplog):
    queue = RQQueue(r, settings)
    with caplog.at_level(logging.INFO, logger="taskq.queue"):
        job_id = queue.enqueue("add", {"a": 1, "b": 2}, job_id="logged", priority="high")
        queue.enqueue("add", {"a": 1, "b": 2}, job_id="logged")  # idempotent: not enqueued again
    (line,) = [rec for rec in caplog.records if rec.levelno == logging.INFO]
    assert line.getMessage() == "job enqueued"
    assert (line.event, line.job_id, line.job_name, line.queue) == (  # type: ignore[attr-defined]
        "enqueued",
        job_id,
        "tests.support.jobs.add",
        "high",
    )


def test_worker_logs_started_finished_failed_and_retried_as_json(settings, r):
    """At DEBUG every event; at INFO (the default) one line per attempt's end, `started` left out."""
    queue = RQQueue(r, settings)
    ok = queue.enqueue("add", {"a": 1, "b": 2})
    bad = queue.enqueue("fail_always", {"message": "nope"}, retry=RetryPolicy(max_retries=1, base=0))
    worker = WorkerProcess(settings, "--burst", env={"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"})
    worker.start(wait_ready=False)
    assert worker.wait(timeout=30) == 0
    events = [json.loads(line) for line in worker.output.splitlines() if line.startswith("{")]
    jobs = [e for e in events if "job_id" in e]

    def history(job_id: str) -> list[tuple[str, int]]:
        return [(e["event"], e["attempt"]) for e in jobs if e["job_id"] == job_id]

    assert history(ok) == [("started", 1), ("finished", 1)]
    assert history(bad) == [
        ("started", 1),
        ("retried", 1),
        ("started", 2),
        ("failed", 2),
    ]
    failed = next(e for e in jobs if e["event"] == "failed")
    assert (failed["level"], failed["error"], failed["queue"]) == ("warning", "ValueError: nope", "default")
    assert failed["job_name"] == "tests.support.jobs.fail_always"
    assert all(isinstance(e["duration"], float) for e in jobs if e["event"] != "started")


def test_at_info_each_attempt_logs_one_line(settings, r):
    queue = RQQueue(r, settings)
    ok = queue.enqueue("add", {"a": 1, "b": 2})
    worker = WorkerProcess(settings, "--burst", env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
    worker.start(wait_ready=False)
    assert worker.wait(timeout=30) == 0
    events = [json.loads(line) for line in worker.output.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events if e.get("job_id") == ok] == ["finished"]
