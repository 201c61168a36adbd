"""A job module whose import fails inside: the worker must show this real cause."""

import taskq_dependency_that_is_not_installed  # noqa: F401


def job() -> None:
    """Never reached."""
