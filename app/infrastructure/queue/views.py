"""A stored job as the application sees it: the frozen `JobView` that `get()` returns.

`RQQueue` and `InMemoryQueue` both build their views here, from the same job hash fields and
the same last result entry, so the two adapters cannot describe a job differently.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from typing import Any

from app.infrastructure.queue.errors import PayloadError
from app.infrastructure.queue.port import JobView
from app.infrastructure.queue.record import (
    MAX_ERROR_TEXT,
    JobRecord,
    load_return_value,
    progress_of,
    summarize_error,
)
from app.infrastructure.queue.schema import JobStatus
from app.infrastructure.queue.serialization import Serializer


def job_view(record: JobRecord, result: Mapping[bytes, bytes], serializer: Serializer, limit: int) -> JobView:
    """The view of `record`, with `result` (the job's last `rq:results` entry, or {})."""
    try:
        job_name, _, _, params = record.load_call(serializer, limit)
    except PayloadError:
        job_name, params = record.job_name, {}
    meta = record.load_meta(serializer)
    status = record.view_status()
    finished = status is JobStatus.FINISHED
    return JobView(
        id=record.id,
        job_name=job_name,
        status=status,
        queue=record.origin,
        params=params,
        attempts=record.attempts,
        max_attempts=record.max_attempts,
        enqueued_at=record.enqueued_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
        result=_return_value(serializer, result) if finished else None,
        error=None if finished else summarize_error(record.error_text() or _final_error(status, result)),
        progress=progress_of(meta),
        meta=meta,
        worker=record.worker_name,
    )


def _return_value(serializer: Serializer, result: Mapping[bytes, bytes]) -> Any:
    try:
        return load_return_value(serializer, result.get(b"return_value"))
    except Exception:
        return None


def _final_error(status: JobStatus, result: Mapping[bytes, bytes]) -> str | None:
    """The error of a failure rq recorded itself (its cleanup, a plain rq worker): only in the result."""
    raw = result.get(b"exc_string")
    if not raw or not status.is_final:
        return None
    try:
        packed = base64.b64decode(raw)
        return zlib.decompressobj().decompress(packed, MAX_ERROR_TEXT).decode(errors="replace")
    except (ValueError, zlib.error):
        return None
