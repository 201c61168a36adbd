import sys

import pytest

from app.infrastructure.queue import import_utils
from app.infrastructure.queue.errors import (
    InvalidJobPathError,
    JobAttributeError,
    JobImportError,
    JobModuleImportError,
    JobModuleNotFoundError,
    JobNotCallableError,
)


def test_imports_a_registered_function():
    func = import_utils.import_callable("tests.support.jobs.add")
    assert func(2, 3) == 5


def test_missing_module():
    with pytest.raises(JobModuleNotFoundError) as caught:
        import_utils.import_callable("tests.support.no_such_module.job")
    assert caught.value.job_name == "tests.support.no_such_module.job"
    assert "does not exist" in str(caught.value)


def test_module_that_raises_while_importing_keeps_the_real_cause():
    sys.modules.pop("tests.support.broken_job", None)
    with pytest.raises(JobModuleImportError) as caught:
        import_utils.import_callable("tests.support.broken_job.job")
    assert "taskq_dependency_that_is_not_installed" in str(caught.value)
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)
    assert caught.value.__cause__.name == "taskq_dependency_that_is_not_installed"


def test_missing_attribute():
    with pytest.raises(JobAttributeError) as caught:
        import_utils.import_callable("tests.support.jobs.nope")
    assert "has no attribute 'nope'" in str(caught.value)


def test_attribute_that_is_not_callable():
    with pytest.raises(JobNotCallableError) as caught:
        import_utils.import_callable("tests.support.jobs.TEST_JOBS")
    assert "not a callable" in str(caught.value)


@pytest.mark.parametrize("path", ["", "nodots", "a..b", "1a.b", "a.b;rm", "a.b c", None, 42])
def test_malformed_paths(path):
    with pytest.raises(InvalidJobPathError):
        import_utils.import_callable(path)


def test_four_failures_are_four_distinct_classes_with_one_base():
    classes = {JobModuleNotFoundError, JobModuleImportError, JobAttributeError, JobNotCallableError}
    assert len(classes) == 4
    assert all(issubclass(c, JobImportError) for c in classes)


def test_module_exists_does_not_run_the_module():
    sys.modules.pop("tests.support.broken_job", None)
    assert import_utils.module_exists("tests.support.broken_job.job") is True
    assert "tests.support.broken_job" not in sys.modules
    assert import_utils.module_exists("tests.support.nothing_here.job") is False
    assert import_utils.module_exists("no_such_top_level_package.job") is False
