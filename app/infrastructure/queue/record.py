"""A job hash as stored by rq (and by our scripts), decoded field by field, with bounded loading.

Producer (`get`) and worker (before running anything) read jobs through here, so both refuse
unsigned or oversized data the same way, before any of it is unpickled or inflated.
"""

from __future__ import annotations

import base64
import json
import math
import time
import zlib
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from app.infrastructure.queue.errors import CorruptJobError, PayloadError, SignatureError
from app.infrastructure.queue.port import Progress
from app.infrastructure.queue.schema import MAX_SECONDS, Field, JobStatus
from app.infrastructure.queue.serialization import (
    Serializer,
    decode_problem,
    decompress_bounded,
    loads_job_data,
)

_RQ_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"
MAX_ERROR_TEXT = 64 * 1024
#: The most retries a job may have (the producer refuses more; a stored job is read within it).
MAX_RETRIES = 100


def text(value: object) -> str:
    """A Redis reply (bytes, str, number) as text."""
    return value.decode(errors="replace") if isinstance(value, bytes | bytearray) else str(value)


def rq_time(epoch: float) -> str:
    """rq's timestamp format (`2026-11-28T20:00:00.123456Z`) for an epoch time.

    On every enqueue and claim: the seconds part is formatted once per second, not per call.
    """
    global _stamp
    seconds = int(epoch)
    cached_second, prefix = _stamp  # one tuple, read and replaced whole: safe across threads
    if seconds != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _stamp = (seconds, prefix)
    return f"{prefix}.{int((epoch - seconds) * 1e6):06d}Z"


_stamp = (-1, "")


def parse_rq_time(raw: bytes | str | None) -> datetime | None:
    if not raw:
        return None
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    for fmt in (_RQ_TIME, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


class _B:
    """The job hash's field names as Redis returns them (bytes), from `schema.Field`."""

    ATTEMPTS = Field.ATTEMPTS.encode()
    DATA = Field.DATA.encode()
    DEPENDENCY_IDS = Field.DEPENDENCY_IDS.encode()
    DESCRIPTION = Field.DESCRIPTION.encode()
    ENDED_AT = Field.ENDED_AT.encode()
    ENQUEUED_AT = Field.ENQUEUED_AT.encode()
    EXC_INFO = Field.EXC_INFO.encode()
    FAILURE_CALLBACK = Field.FAILURE_CALLBACK.encode()
    INPUT = Field.INPUT.encode()
    META = Field.META.encode()
    ORIGIN = Field.ORIGIN.encode()
    PARAMS_VERSION = Field.PARAMS_VERSION.encode()
    REASON = Field.REASON.encode()
    RESULT_TTL = Field.RESULT_TTL.encode()
    RETRIES_LEFT = Field.RETRIES_LEFT.encode()
    RETRY_INTERVALS = Field.RETRY_INTERVALS.encode()
    STARTED_AT = Field.STARTED_AT.encode()
    STATUS = Field.STATUS.encode()
    STOPPED_CALLBACK = Field.STOPPED_CALLBACK.encode()
    SUCCESS_CALLBACK = Field.SUCCESS_CALLBACK.encode()
    TIMEOUT = Field.TIMEOUT.encode()
    TRACE = Field.TRACE.encode()
    SIGNATURE = Field.SIGNATURE.encode()
    UNKNOWN_SINCE = Field.UNKNOWN_SINCE.encode()
    WORKER_NAME = Field.WORKER_NAME.encode()


class JobRecord:
    """The fields of `rq:job:<id>`, decoded on first read.

    A worker claims thousands of jobs a second and reads a handful of fields of each, so nothing
    is parsed until asked for; `data` and `meta` stay raw until loaded (and checked).
    """

    def __init__(self, job_id: str, fields: Mapping[bytes, bytes]) -> None:
        self.id = job_id
        self.fields = fields

    def _text(self, name: bytes) -> str | None:
        raw = self.fields.get(name)
        return raw.decode(errors="replace") if raw else None

    @cached_property
    def status(self) -> str:
        return self._text(_B.STATUS) or JobStatus.QUEUED.value

    @cached_property
    def origin(self) -> str:
        return self._text(_B.ORIGIN) or ""

    @property
    def data(self) -> bytes:
        return self.fields.get(_B.DATA) or b""

    @cached_property
    def description(self) -> str:
        return self._text(_B.DESCRIPTION) or ""

    @property
    def worker_name(self) -> str | None:
        return self._text(_B.WORKER_NAME)

    @cached_property
    def timeout(self) -> int | None:
        """Seconds the job may run; None (the worker's default) when unset or out of range."""
        value = _optional_int(self.fields.get(_B.TIMEOUT))
        return value if value is not None and 0 < value <= MAX_SECONDS else None

    @cached_property
    def result_ttl(self) -> int:
        """Seconds to keep a success: rq's -1 (forever) as is, anything else past ten years read as 500."""
        value = _int(self.fields.get(_B.RESULT_TTL), 500)
        return value if value == -1 or 0 < value <= MAX_SECONDS else 500

    @cached_property
    def retries_left(self) -> int:
        return min(max(_int(self.fields.get(_B.RETRIES_LEFT), 0), 0), MAX_RETRIES)

    @cached_property
    def retry_intervals(self) -> tuple[float, ...]:
        """The waits before each retry, in seconds.

        Raises:
            CorruptJobError: the stored list is not a list of at most 100 waits of 0 to ten years.
        """
        raw = self.fields.get(_B.RETRY_INTERVALS)
        if not raw:
            return ()
        try:
            values = json.loads(raw)
        except ValueError:
            values = None
        if not isinstance(values, list) or len(values) > MAX_RETRIES or not all(map(_is_wait, values)):
            shown = raw[:60].decode(errors="replace")
            raise CorruptJobError(self.id, f"field retry_intervals is {shown!r}, not a list of waits")
        return tuple(float(value) for value in values)

    @property
    def attempts(self) -> int:
        return _int(self.fields.get(_B.ATTEMPTS), 0)

    @property
    def max_attempts(self) -> int:
        try:
            return len(self.retry_intervals) + 1
        except CorruptJobError:
            return max(self.attempts, 1)

    @property
    def meta_blob(self) -> bytes | None:
        return self.fields.get(_B.META) or None

    @property
    def exc_info(self) -> bytes | None:
        return self.fields.get(_B.EXC_INFO) or None

    @property
    def reason(self) -> str | None:
        return self._text(_B.REASON)

    @property
    def has_dependencies(self) -> bool:
        return bool(self.fields.get(_B.DEPENDENCY_IDS))

    @cached_property
    def callbacks(self) -> tuple[str, ...]:
        names = (_B.SUCCESS_CALLBACK, _B.FAILURE_CALLBACK, _B.STOPPED_CALLBACK)
        return tuple(name for name in (self._text(field) for field in names) if name)

    @property
    def enqueued_at(self) -> datetime | None:
        return parse_rq_time(self.fields.get(_B.ENQUEUED_AT))

    @property
    def started_at(self) -> datetime | None:
        return parse_rq_time(self.fields.get(_B.STARTED_AT))

    @property
    def ended_at(self) -> datetime | None:
        return parse_rq_time(self.fields.get(_B.ENDED_AT))

    @property
    def trace(self) -> str | None:
        """The producer's trace context (`app.tracing`), None when it had none."""
        return self._text(_B.TRACE)

    @property
    def params_version(self) -> int:
        """The params version it was enqueued with (1 for jobs written without one, by rq say)."""
        return _int(self.fields.get(_B.PARAMS_VERSION), 1)

    @property
    def input(self) -> bytes | None:
        """What its workflow handed it (JSON, `workflow_input`), None for any other job."""
        return self.fields.get(_B.INPUT)

    @property
    def unknown_since(self) -> float | None:
        """When a worker that did not know it first handed it back (epoch seconds); None if never."""
        try:
            since = float(self.fields.get(_B.UNKNOWN_SINCE) or "")
        except ValueError:
            return None
        return since if math.isfinite(since) else None

    @property
    def job_name(self) -> str:
        """The job's name (import path), as its description starts with it: nothing is unpickled."""
        return self.description.partition("(")[0]

    def load_call(
        self, serializer: Serializer, limit: int
    ) -> tuple[str, Any, tuple[Any, ...], dict[str, Any]]:
        """(job name, instance, args, kwargs), checked before anything is unpickled.

        Raises:
            SignatureError: signing is on and the data is not signed with a configured key.
            PayloadError: the data is over `limit` (stored or inflated) or does not decode.
        """
        raw = decompress_bounded(self.id, self.data, limit)
        try:
            job_name, instance, args, kwargs = loads_job_data(serializer, raw, self.fields.get(_B.SIGNATURE))
        except SignatureError as exc:
            raise SignatureError(self.id, str(exc).partition(": ")[2] or str(exc)) from exc
        except Exception as exc:
            raise PayloadError(self.id, decode_problem(raw, serializer, exc)) from exc
        if not isinstance(job_name, str) or not isinstance(kwargs, dict):
            raise PayloadError(self.id, "job data is not (function, instance, args, kwargs)")
        return job_name, instance, tuple(args or ()), kwargs

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


def _is_wait(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= MAX_SECONDS
    )


def _int(raw: bytes | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def _optional_int(raw: bytes | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None
