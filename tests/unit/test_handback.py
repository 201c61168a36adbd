"""What a worker does with a job it does not know (a name, or a params version, of another deploy):
hand it back, until the grace since it was first handed back is over and no live worker knows it."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.infrastructure.queue.errors import QueueUnavailableError
from app.infrastructure.queue.job_params import JobParams
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.record import JobRecord
from app.infrastructure.queue.schema import JOB_RECORD, LAYOUTS, TRANSITIONS, Ending, Field, JobStatus
from app.infrastructure.queue.serialization import make_serializer
from app.infrastructure.queue.store import Claim
from app.worker.execution import HANDBACK_DELAY, JobRunner, Outcome, Settled, settle
from tests.support import jobs
from tests.support.jobs import TEST_JOBS

ADD = "tests.support.jobs.add"
NOW = 1_800_000_000.0
SERIALIZER = make_serializer("pickle")


def claim(job_name: str = ADD, **fields: bytes) -> Claim:
    data = SERIALIZER.dumps((job_name, None, (), {"a": 1, "b": 2}))
    record = JobRecord(
        "j1", {b"data": data, b"status": b"started", **{k.encode(): v for k, v in fields.items()}}
    )
    return Claim("default", "j1", "e1", 1, record, NOW)


def runner(grace: float = 60.0, knows=lambda name, version, queue: False, version: int = 1) -> JobRunner:
    registry = JobRegistry(extra=TEST_JOBS, params={ADD: JobParams(version=version)})
    settings = Settings(extra_jobs=TEST_JOBS, unknown_job_grace=grace)
    return JobRunner(
        settings,
        registry,
        SERIALIZER,
        {ADD: jobs.add},
        lambda c: lambda *a: None,
        timeouts=False,
        knows=knows,
    )


def test_the_schema_has_the_hand_back_and_the_version_record():
    assert TRANSITIONS["handback"].sources == {"started"} and TRANSITIONS["handback"].targets == {
        JobStatus.SCHEDULED
    }
    assert ("version", (Field.PARAMS_VERSION,)) in JOB_RECORD
    assert {"job_id", "exec_id", "retry_in", "reason"} <= set(LAYOUTS["handback"].args)


def test_a_name_it_does_not_know_is_handed_back_not_failed():
    outcome = runner().run(claim("tests.support.jobs.added_later"))
    assert outcome.ending is Ending.HANDBACK
    assert outcome.error == (
        "handed back: this worker does not know tests.support.jobs.added_later; "
        "waiting for a worker that does"
    )


def test_another_params_version_is_handed_back_too():
    assert runner(version=2).run(claim(**{Field.PARAMS_VERSION: b"1"})).ending is Ending.HANDBACK
    assert (
        runner()
        .run(claim(**{Field.PARAMS_VERSION: b"2"}))
        .error.startswith("handed back: this worker does not know tests.support.jobs.add (params version 2)")
    )
    assert runner().run(claim()).ending is Ending.FINISHED  # no version recorded (rq, old producers): 1


def test_after_the_grace_it_fails_unless_a_live_worker_knows_it():
    long_ago = {Field.UNKNOWN_SINCE: repr(NOW - 61).encode()}
    lately = {Field.UNKNOWN_SINCE: repr(NOW - 59).encode()}
    unknown = "tests.support.jobs.added_later"
    failed = runner().run(claim(unknown, **long_ago))
    assert (failed.ending, failed.retryable) == (Ending.FAILED, False)
    assert failed.error == f"job not found: no live worker knows {unknown}"
    assert runner().run(claim(unknown, **lately)).ending is Ending.HANDBACK
    assert runner(knows=lambda *_: True).run(claim(unknown, **long_ago)).ending is Ending.HANDBACK

    def down(*_: object) -> bool:
        raise QueueUnavailableError("redis://x", "down")

    assert runner(knows=down).run(claim(unknown, **long_ago)).ending is Ending.HANDBACK  # cannot tell: wait
    assert runner(grace=0).run(claim(unknown)).ending is Ending.FAILED  # no grace: at first sight


def test_a_hand_back_is_due_a_little_later_and_uses_no_retry():
    record = claim().record
    assert settle(record, Outcome(Ending.HANDBACK, error="x")) == Settled(
        Ending.HANDBACK, HANDBACK_DELAY, "x"
    )
    assert HANDBACK_DELAY > 0  # a lone old worker does not claim it again at once


@pytest.mark.parametrize(("raw", "since"), [(b"", None), (b"x", None), (b"nan", None), (b"12.5", 12.5)])
def test_the_first_hand_back_time_reads_safely(raw, since):
    record = JobRecord("j", {Field.UNKNOWN_SINCE.encode(): raw} if raw else {})
    assert record.unknown_since == since and record.params_version == 1


def test_a_name_any_writer_chose_is_shown_on_one_line_and_bounded():
    odd = runner().run(claim("evil.name\nfake line"))
    assert odd.ending is Ending.HANDBACK and "\n" not in odd.error and "'evil.name\\nfake line'" in odd.error
    long = runner().run(claim("x" * 1000))
    assert len(long.error) < 400
