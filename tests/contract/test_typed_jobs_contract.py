"""Issue 15's cases, on the three adapters (AsyncRQQueue too): typed params refused at enqueue
with nothing written, a job its worker does not know handed back unfailed (or failed once the
grace is over), and
`require_worker` refusing what no worker knows. The producer is the new deploy; `drain` is an
old worker that does not know `added_later`, nor version 2 of `add`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.bootstrap import registry_for
from app.infrastructure.queue.errors import InvalidOptionError, InvalidParamsError, NoWorkerError
from app.infrastructure.queue.job_params import JobParams
from app.infrastructure.queue.job_paths import INGEST_DOC_JOB, PARAMS, JobRegistry
from app.infrastructure.queue.memory_queue import InMemoryQueue
from app.infrastructure.queue.port import JobQueue, JobRequest, JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.aio import AsyncHarnessLoop
from tests.support.inprocess import drain
from tests.support.jobs import LATER_JOB, TEST_JOBS
from tests.support.params import AddParams, EchoParams

ADD, ECHO = "tests.support.jobs.add", "tests.support.jobs.echo"
DECLARED = {**PARAMS, ADD: JobParams(AddParams, version=2), ECHO: JobParams(EchoParams)}


class Memory:
    def __init__(self, producer, worker):
        registry = JobRegistry(extra=producer.extra_jobs, params=DECLARED)
        self.queue: JobQueue = InMemoryQueue(producer, registry, worker_registry=registry_for(worker))
        self.store = self.queue.store

    def drain(self):
        self.queue.run_pending()

    def jobs(self) -> int:
        return len(self.store.jobs)


class Redis:
    def __init__(self, producer, worker, r):
        self.worker, self.r = worker, r
        self.queue: JobQueue = RQQueue(r, producer, JobRegistry(extra=producer.extra_jobs, params=DECLARED))

    def drain(self):
        drain(self.worker, self.r)

    def jobs(self) -> int:
        return len(list(self.r.scan_iter("rq:job:*")))


class AsyncRedis(Redis):
    """AsyncRQQueue behind a sync face (`tests/support/aio.py`), the same registry."""

    def __init__(self, producer, worker, r, loop: AsyncHarnessLoop):
        super().__init__(producer, worker, r)
        registry = JobRegistry(extra=producer.extra_jobs, params=DECLARED)
        self.queue = loop.sync_queue(producer, registry)


@pytest.fixture(params=["memory", "redis", "async"])
def make(request, settings):
    def build(grace: float = 3600.0):
        worker = replace(settings, unknown_job_grace=grace)
        producer = replace(worker, extra_jobs=(*TEST_JOBS, LATER_JOB))
        if request.param == "memory":
            return Memory(producer, worker)
        if request.param == "async":
            loop = AsyncHarnessLoop()
            request.addfinalizer(loop.close)
            return AsyncRedis(producer, worker, request.getfixturevalue("r"), loop)
        return Redis(producer, worker, request.getfixturevalue("r"))

    return build


@pytest.mark.parametrize(
    ("job", "params", "field", "reason"),
    [
        ("add", {"a": 1}, "b", "field 'b' is required"),
        ("add", {"a": 1, "b": 2, "c": 3}, "c", "field 'c' is not declared in AddParams (declared: a, b)"),
        ("add", {"a": 1, "b": "2"}, "b", "field 'b': Input should be a valid integer, got str '2'"),
        ("echo", {"name": "x", "tags": ["a", 2]}, "tags", "field 'tags'[1]: Input should be a valid string"),
        (
            INGEST_DOC_JOB,
            {"doc_id": 123},
            "doc_id",
            "field 'doc_id': Input should be a valid string, got int",
        ),
    ],
    ids=["missing", "unknown", "wrong type", "wrong item (dataclass)", "ingest_doc"],
)
def test_params_that_do_not_fit_the_declaration_are_refused_naming_the_field(
    make, job, params, field, reason
):
    harness = make()
    with pytest.raises(InvalidParamsError) as caught:
        harness.queue.enqueue(job, params)
    assert caught.value.key == field and reason in str(caught.value), str(caught.value)
    with pytest.raises(InvalidParamsError):  # a batch too, all or nothing
        harness.queue.enqueue_many([JobRequest("add", {"a": 1, "b": 2}), JobRequest(job, params)])
    assert harness.jobs() == 0


def test_params_that_fit_reach_the_job_as_given(make):
    harness = make()
    ids = [harness.queue.enqueue("add", {"a": 2, "b": 3}), harness.queue.enqueue("echo", {"name": "n"})]
    assert harness.queue.get(ids[1]).params == {"name": "n"}  # defaults are the job's, not sent
    assert harness.queue.enqueue(job_name=INGEST_DOC_JOB, params={"doc_id": "123"})


@pytest.mark.parametrize(
    ("job", "params", "shown"),
    [
        ("added_later", {"value": "v"}, "tests.support.jobs.added_later"),
        ("add", {"a": 1, "b": 2}, "tests.support.jobs.add (params version 2)"),
    ],
    ids=["unknown name", "other version"],
)
def test_a_job_its_worker_does_not_know_is_handed_back_unfailed(make, job, params, shown):
    harness = make()
    job_id = harness.queue.enqueue(job, params)
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.attempts, view.is_final) == (JobStatus.SCHEDULED, 0, False)
    assert view.error == f"handed back: this worker does not know {shown}; waiting for a worker that does"


@pytest.mark.parametrize(
    ("job", "params", "shown"),
    [
        ("added_later", {"value": "v"}, "tests.support.jobs.added_later"),
        ("add", {"a": 1, "b": 2}, "tests.support.jobs.add (params version 2)"),
    ],
    ids=["unknown name", "other version"],
)
def test_once_the_grace_is_over_it_fails_with_job_not_found(make, job, params, shown):
    harness = make(grace=0)
    job_id = harness.queue.enqueue(job, params)
    harness.drain()
    view = harness.queue.get(job_id)
    assert (view.status, view.error) == (JobStatus.FAILED, f"job not found: no live worker knows {shown}")


def test_require_worker_refuses_a_job_no_worker_knows_and_writes_nothing(make):
    harness = make()
    for job, params in (("added_later", {"value": "v"}), ("add", {"a": 1, "b": 2})):
        with pytest.raises(NoWorkerError, match="no live worker knows job"):
            harness.queue.enqueue(job, params, require_worker=True)
    with pytest.raises(NoWorkerError):
        harness.queue.enqueue_many(
            [JobRequest("echo", {"name": "n"}), JobRequest("add", {"a": 1, "b": 2}, require_worker=True)]
        )
    with pytest.raises(InvalidOptionError, match="require_worker"):
        harness.queue.enqueue("echo", {"name": "n"}, require_worker="yes")  # type: ignore[typeddict-item]
    assert harness.jobs() == 0
