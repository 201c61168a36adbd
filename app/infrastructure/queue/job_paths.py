"""The registry of jobs: one constant per job import path, the short name humans use, and
the params each job declares (a pydantic model or a dataclass, with a version).

The producer enqueues by these paths without importing job code, and checks params against
their declaration; the worker runs only paths listed here (plus `QUEUE_EXTRA_JOBS`, set by the
operator), so nothing written into Redis by anyone else can make it import or run arbitrary code.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict

from app.config import ConfigError
from app.infrastructure.queue.errors import InvalidJobPathError, UnknownJobError
from app.infrastructure.queue.import_utils import split_path
from app.infrastructure.queue.job_params import JobParams, ParamsSchema

INGEST_DOC_JOB = "app.worker.jobs.ingest_doc.ingest_doc"
REPORT_BATCH_JOB = "app.worker.jobs.report_batch.report_batch"

#: short name -> import path. Add a line here for every job in `app/worker/jobs/`.
JOBS: Mapping[str, str] = MappingProxyType(
    {
        "ingest_doc": INGEST_DOC_JOB,
        "report_batch": REPORT_BATCH_JOB,
    }
)


class IngestDocParams(BaseModel):
    """`ingest_doc(doc_id)`: the document's name in `DOCUMENTS_DIR`, without its extension."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    doc_id: str


class ReportBatchParams(BaseModel):
    """`report_batch(results, label)`: a workflow's callback; `results` is passed by the workflow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    results: dict[str, Any] | None
    label: str = ""


#: import path -> what its params are (`JobParams(model, version)`). A job without an entry
#: takes any params of the right shape, at version 1.
PARAMS: Mapping[str, JobParams] = MappingProxyType(
    {
        INGEST_DOC_JOB: JobParams(IngestDocParams),
        REPORT_BATCH_JOB: JobParams(ReportBatchParams),
    }
)

#: Import paths rq may call back (`on_success`, `on_failure`, `on_stopped`). Our API sets none;
#: a job written by anyone else that names a callback not listed here is refused, unimported.
CALLBACKS: frozenset[str] = frozenset()

#: Concurrency and rate limits by job (short name or path), in `QUEUE_LIMITS`'s words, e.g.
#: `{"ingest_doc": "concurrency:2;rate:10/1s"}`; `QUEUE_LIMITS` overrides them by name.
LIMITS: Mapping[str, str] = MappingProxyType({})


class JobRegistry:
    """The allow-list of jobs: looks names up, suggests close ones, never imports anything."""

    def __init__(
        self,
        jobs: Mapping[str, str] = JOBS,
        extra: Iterable[tuple[str, str]] = (),
        callbacks: Iterable[str] = CALLBACKS,
        params: Mapping[str, JobParams] = PARAMS,
    ) -> None:
        merged = dict(jobs)
        for name, path in extra:
            try:
                split_path(path)
            except InvalidJobPathError as exc:
                raise ConfigError("QUEUE_EXTRA_JOBS", f"{name}={path}", str(exc)) from exc
            if name in merged and merged[name] != path:
                raise ConfigError(
                    "QUEUE_EXTRA_JOBS", f"{name}={path}", f"{name!r} is already {merged[name]!r}"
                )
            merged[name] = path
        self._by_name: Mapping[str, str] = MappingProxyType(merged)
        self._paths = frozenset(merged.values())
        self._callbacks = frozenset(callbacks)
        for path in params:
            if path not in self._paths:
                raise ValueError(f"params are declared for {path!r}, which is not a registered job path")
        self._versions = {path: entry.version for path, entry in params.items()}
        self._declared = {path: ParamsSchema.of(e.model) for path, e in params.items() if e.model is not None}

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """(short name, path) pairs, in registration order."""
        return iter(self._by_name.items())

    def __len__(self) -> int:
        return len(self._by_name)

    def is_registered(self, path: object) -> bool:
        """Whether `path` is exactly a registered import path."""
        return isinstance(path, str) and path in self._paths

    def is_callback(self, path: object) -> bool:
        """Whether `path` is a registered callback path."""
        return isinstance(path, str) and path in self._callbacks

    def declared(self, path: str) -> ParamsSchema | None:
        """The params declared for the job at `path`; None when it declares none."""
        return self._declared.get(path)

    def version(self, path: str) -> int:
        """The params version of the job at `path` (1 unless its entry says otherwise)."""
        return self._versions.get(path, 1)

    def check_params(self, path: str, params: Mapping[str, Any], pending: str | None = None) -> None:
        """Raises `InvalidParamsError`, naming the field, when `params` do not fit the declaration
        (`pending`: a field a workflow fills in later, which may be missing now)."""
        declared = self._declared.get(path)
        if declared is not None:
            declared.check(path, params, pending)

    def resolve(self, job_name: object) -> str:
        """The import path for `job_name`, which is a registered path or its short name.

        Raises:
            UnknownJobError: not registered; the error carries the closest registered names.
        """
        if isinstance(job_name, str):
            if job_name in self._paths:
                return job_name
            if job_name in self._by_name:
                return self._by_name[job_name]
        raise UnknownJobError(job_name, self.suggest(job_name))

    def suggest(self, job_name: object, limit: int = 3) -> list[str]:
        """Registered paths whose path or short name is close to `job_name`."""
        if not isinstance(job_name, str):
            return []
        candidates = {**{path: path for path in self._paths}, **self._by_name}
        close = difflib.get_close_matches(job_name, list(candidates), n=limit, cutoff=0.5)
        tail = job_name.rpartition(".")[2]
        close += difflib.get_close_matches(tail, list(self._by_name), n=limit, cutoff=0.6)
        seen: dict[str, None] = {}
        for match in close:
            seen.setdefault(candidates[match], None)
        return list(seen)[:limit]
