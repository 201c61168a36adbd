"""Resolve every registered job path before taking any job: a broken path is a deploy error.

The spec's "job not found" is caught here, at start, with one clear line per broken path,
instead of failing jobs one by one at 3 a.m.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.infrastructure.queue.errors import JobImportError
from app.infrastructure.queue.import_utils import import_callable
from app.infrastructure.queue.job_paths import JobRegistry


def resolve_jobs(registry: JobRegistry) -> tuple[dict[str, Callable[..., Any]], list[str]]:
    """Import every registered job: ({path: function}, [one line per broken path])."""
    functions: dict[str, Callable[..., Any]] = {}
    problems: list[str] = []
    for name, path in registry:
        try:
            functions[path] = import_callable(path)
        except JobImportError as exc:
            problems.append(f"job {name!r}: {exc}")
    return functions, problems
