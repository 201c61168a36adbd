import pytest

from app.config import ConfigError
from app.infrastructure.queue.errors import UnknownJobError
from app.infrastructure.queue.job_paths import INGEST_DOC_JOB, JOBS, JobRegistry


def test_ingest_doc_is_registered_by_path_and_short_name():
    assert JOBS["ingest_doc"] == INGEST_DOC_JOB == "app.worker.jobs.ingest_doc.ingest_doc"
    registry = JobRegistry()
    assert registry.resolve(INGEST_DOC_JOB) == INGEST_DOC_JOB
    assert registry.resolve("ingest_doc") == INGEST_DOC_JOB


@pytest.mark.parametrize(
    "name", ["ingest_docs", "ingest-doc", "app.worker.jobs.ingest_doc.ingest_dco", "ingst_doc"]
)
def test_unknown_names_suggest_the_closest(name):
    with pytest.raises(UnknownJobError) as caught:
        JobRegistry().resolve(name)
    assert caught.value.job_name == name
    assert caught.value.suggestions[0] == INGEST_DOC_JOB  # the closest first (report_batch may follow)
    assert "did you mean" in str(caught.value)


@pytest.mark.parametrize("name", ["os.system", "", None, 3, "builtins.eval"])
def test_unregistered_or_odd_names_are_unknown(name):
    with pytest.raises(UnknownJobError):
        JobRegistry().resolve(name)
    assert not JobRegistry().is_registered(name)


def test_extra_jobs_extend_the_registry():
    registry = JobRegistry(extra=[("add", "tests.support.jobs.add")])
    assert registry.resolve("add") == "tests.support.jobs.add"
    assert registry.is_registered("tests.support.jobs.add")
    assert dict(registry)["ingest_doc"] == INGEST_DOC_JOB


def test_extra_jobs_cannot_hijack_a_name_or_use_a_bad_path():
    with pytest.raises(ConfigError):
        JobRegistry(extra=[("ingest_doc", "os.system")])
    with pytest.raises(ConfigError):
        JobRegistry(extra=[("x", "not a path")])


def test_no_callbacks_are_registered_by_default():
    assert not JobRegistry().is_callback("os.system")
