"""A job hash as stored by rq (and by our scripts), decoded field by field, with bounded loading.

Producer (`get`) and worker (before running anything) read jobs through here, so both refuse
unsigned or oversized data the same way, before any of it is unpickled or inflated.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from app.infrastructure.queue.errors import PayloadError, SignatureError
from app.infrastructure.queue.port import JobStatus, Progress
from app.infrastructure.queue.serialization import Serializer, decompress_bounded

_RQ_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
MAX_ERROR_TEXT = 64 * 1024


def text(value: object) -> str:
    """A Redis reply (bytes, str, number) as text."""
    return value.decode(errors="replace") if isinstance(value, bytes | bytearray) else str(value)


def rq_time(epoch: float) -> str:
    """rq's timestamp format for an epoch time."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime(_RQ_TIME)


def parse_rq_time(raw: bytes | str | None) -> datetime | None:
    if not raw:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    for fmt in (_RQ_TIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class JobRecord:
    """The fields of `rq:job:<id>` we use, decoded; `data` and `meta` stay raw until loaded."""

    id: str
    status: str
    origin: str
    data: bytes
    description: str
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    worker_name: str | None
    timeout: int | None
    retries_left: int
    retry_intervals: tuple[float, ...]
    attempts: int
    max_attempts: int
    meta_blob: bytes | None
    exc_info: bytes | None
    reason: str | None
    callbacks: tuple[str, ...]
    #: The producer's trace context (`app.tracing`), None when it had none.
    trace: str | None = None

    @classmethod
    def from_hash(cls, job_id: str, fields: Mapping[bytes, bytes]) -> JobRecord:
        get = fields.get
        text = _text(fields)
        retries_left = _int(get(b"retries_left"), 0)
        intervals = tuple(json.loads(get(b"retry_intervals") or b"[]"))
        return cls(
            id=job_id,
            status=text(b"status") or "queued",
            origin=text(b"origin") or "",
            data=get(b"data") or b"",
            description=text(b"description") or "",
            enqueued_at=parse_rq_time(get(b"enqueued_at")),
            started_at=parse_rq_time(get(b"started_at")),
            ended_at=parse_rq_time(get(b"ended_at")),
            worker_name=text(b"worker_name"),
            timeout=_int(get(b"timeout"), None),
            retries_left=retries_left,
            retry_intervals=intervals,
            attempts=_int(get(b"taskq_attempts"), 0),
            max_attempts=_int(get(b"taskq_max_attempts"), len(intervals) + 1),
            meta_blob=get(b"meta") or None,
            exc_info=get(b"exc_info") or None,
            reason=text(b"taskq_reason"),
            callbacks=tuple(
                name
                for name in (
                    text(b"success_callback_name"),
                    text(b"failure_callback_name"),
                    text(b"stopped_callback_name"),
                )
                if name
            ),
            trace=text(b"taskq_trace"),
        )

    def load_call(
        self, serializer: Serializer, limit: int
    ) -> tuple[str, Any, tuple[Any, ...], dict[str, Any]]:
        """(function path, instance, args, kwargs), checked before anything is unpickled.

        Raises:
            SignatureError: signing is on and the data is not signed with a configured key.
            PayloadError: the data is over `limit` (stored or inflated) or does not decode.
        """
        raw = decompress_bounded(self.id, self.data, limit)
        try:
            func_name, instance, args, kwargs = serializer.loads(raw)
        except SignatureError as exc:
            raise SignatureError(self.id, str(exc).partition(": ")[2] or str(exc)) from exc
        except Exception as exc:
            raise PayloadError(self.id, f"job data does not decode: {type(exc).__name__}") from exc
        if not isinstance(func_name, str) or not isinstance(kwargs, dict):
            raise PayloadError(self.id, "job data is not (function, instance, args, kwargs)")
        return func_name, instance, tuple(args or ()), kwargs

    def load_meta(self, serializer: Serializer) -> dict[str, Any]:
        """The job's meta; unreadable or unsigned meta reads as empty (it is never trusted)."""
        if not self.meta_blob:
            return {}
        try:
            meta = serializer.loads(self.meta_blob)
        except Exception:
            return {}
        return meta if isinstance(meta, dict) else {}

    def error_text(self) -> str | None:
        """The stored error (traceback) of the last failed attempt, bounded."""
        if not self.exc_info:
            return self.reason
        try:
            inflater = zlib.decompressobj()
            text = inflater.decompress(self.exc_info, MAX_ERROR_TEXT)
        except zlib.error:
            text = self.exc_info[:MAX_ERROR_TEXT]
        return text.decode(errors="replace")

    def view_status(self) -> JobStatus:
        try:
            return JobStatus(self.status)
        except ValueError:
            return JobStatus.QUEUED


def progress_of(meta: Mapping[str, Any]) -> Progress | None:
    raw = meta.get("progress")
    if not isinstance(raw, Mapping):
        return None
    try:
        return Progress(int(raw["done"]), int(raw["total"]), str(raw.get("message", "")))
    except (KeyError, TypeError, ValueError):
        return None


def summarize_error(text: str | None) -> str | None:
    """The last non-empty line of a traceback: what a human reads first."""
    if not text:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def encode_error(text: str) -> tuple[bytes, str]:
    """(zlib for the job hash's `exc_info`, base64 zlib for a result's `exc_string`): rq's formats."""
    packed = zlib.compress(text[:MAX_ERROR_TEXT].encode(errors="replace"))
    return packed, base64.b64encode(packed).decode()


def load_return_value(serializer: Serializer, raw: bytes | None) -> Any:
    """A result's return value (base64 of serialized bytes, rq's format); None if absent."""
    if not raw:
        return None
    return serializer.loads(base64.b64decode(raw))


def _text(fields: Mapping[bytes, bytes]) -> Any:
    def get(name: bytes) -> str | None:
        raw = fields.get(name)
        return raw.decode(errors="replace") if raw else None

    return get


def _int(raw: bytes | None, default: int | None) -> Any:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default
