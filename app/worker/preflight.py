"""Resolve every registered job path before taking any job: a broken path is a deploy error.

The spec's "job not found" is caught here, at start, with one clear line per broken path,
instead of failing jobs one by one at 3 a.m. So is a function whose signature does not take
the params its registry entry declares (`job_paths.PARAMS`): one line per job.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from app.infrastructure.queue.errors import JobImportError
from app.infrastructure.queue.import_utils import import_callable
from app.infrastructure.queue.job_params import ParamsSchema
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


def check_params(registry: JobRegistry, functions: Mapping[str, Callable[..., Any]]) -> list[str]:
    """One line per imported job whose function does not take its declared params."""
    lines = []
    for name, path in registry:
        declared = registry.declared(path)
        if declared is None or path not in functions:
            continue
        problems = signature_problems(functions[path], declared)
        if problems:
            lines.append(f"job {name!r}: {path} and {declared.title} disagree: {'; '.join(problems)}")
    return lines


def signature_problems(func: Callable[..., Any], declared: ParamsSchema) -> list[str]:
    """What a job enqueued with valid declared params would break on: names, then required ones."""
    params = inspect.signature(func).parameters.values()
    keywords = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    required = {n for n, p in keywords.items() if p.default is p.empty}
    positional = [p.name for p in params if p.kind is p.POSITIONAL_ONLY and p.default is p.empty]
    untaken = declared.names - set(keywords) - set(positional)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        untaken = frozenset()
    problems = [f"it takes no parameter {n!r}" for n in sorted(untaken)]
    problems += [f"it requires {n!r}, which is not declared" for n in sorted(required - declared.names)]
    optional = required & (declared.names - declared.required)
    problems += [f"it requires {n!r}, which is declared optional" for n in sorted(optional)]
    return problems + [f"its parameter {n!r} is positional-only" for n in positional]
