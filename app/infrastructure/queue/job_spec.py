"""Validate a job request and turn it into exactly what will be stored: a `JobSpec`.

Both adapters use this, so `RQQueue` and `InMemoryQueue` accept and refuse the same input.
Every check runs before anything is written; a rejected request leaves no trace.
"""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from app.config import PRIORITIES, Settings
from app.infrastructure.queue.errors import (
    InvalidOptionError,
    InvalidParamsError,
    PayloadTooLargeError,
    SerializationError,
)
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.keys import check_job_id
from app.infrastructure.queue.port import MAX_SECONDS, OPTION_NAMES, JobRequest, RetryPolicy
from app.infrastructure.queue.schema import pack_record
from app.infrastructure.queue.serialization import (
    TASKQ_ONLY,
    Serializer,
    dumps_job_data,
    find_unserializable_key,
    refuse_main_objects,
)
from app.infrastructure.queue.workflow_input import INPUT_MARK

MAX_META_BYTES = 16 * 1024
#: A limit key becomes part of Redis key names: no ':' (it would reach other keys), no spaces.
LIMIT_KEY_RE = re.compile(r"[A-Za-z0-9_.@-]{1,128}")
#: Serialized data at least this long is zlib-compressed (rq's format); shorter data is stored
#: as is, which rq also reads (its fallback), and saves the compressor's time on the hot path.
COMPRESS_FROM = 1024

_describe = reprlib.Repr()
_describe.maxstring = 60
_describe.maxother = 60


class JobSpec(NamedTuple):
    """A validated job, serialized and ready to be written in one step.

    A NamedTuple rather than a frozen dataclass: it is built on every enqueue, and is 3x cheaper.
    """

    job_id: str
    explicit_id: bool
    job_name: str
    params: Mapping[str, Any]
    queue: str
    data: bytes
    signature: bytes  # the data's HMAC tag (b"" without signing)
    description: str
    timeout: int
    result_ttl: int
    failure_ttl: int
    ttl: int | None
    retry_intervals: tuple[float, ...]
    run_at: float | None  # `at`: an epoch time (Redis's clock decides when it has come)
    run_in: float | None  # `delay`: seconds after the enqueue, counted by Redis's clock
    depends_on: tuple[str, ...]
    meta: Mapping[str, Any]
    meta_blob: bytes | None
    version: int  # of the entry's declared params (`job_paths.PARAMS`), recorded with the job
    limit_key: str = ""  # what its per-key limits count by

    @property
    def max_attempts(self) -> int:
        return len(self.retry_intervals) + 1


class JobSpecBuilder:
    """Checks requests against the registry and the settings, and serializes them."""

    def __init__(self, settings: Settings, registry: JobRegistry, serializer: Serializer) -> None:
        self.settings = settings
        self.registry = registry
        self.serializer = serializer
        self._queues = {priority: settings.queue_for(priority) for priority in PRIORITIES}
        self._default_retry = RetryPolicy(
            max_retries=settings.retry_max,
            base=settings.retry_base,
            factor=settings.retry_factor,
            cap=settings.retry_cap,
            jitter=settings.retry_jitter,
        )
        # A request without options (the common call) takes these, in JobSpec's order.
        self._default_limits = (settings.job_timeout, settings.result_ttl, settings.failure_ttl, settings.ttl)

    def build(self, request: JobRequest, now: float, input_param: str | None = None) -> JobSpec:
        """Validate and serialize `request`; `now` is the enqueue time (epoch seconds).

        `input_param` (a workflow's job): the param its workflow fills in when it is due (the
        previous result, a group's results); it is stored as `INPUT_MARK`, which the worker
        replaces, so that the name is signed with the rest of the call.

        Raises:
            UnknownJobError, InvalidParamsError, SerializationError, PayloadTooLargeError,
            InvalidOptionError, InvalidJobIdError: what was wrong, named.
        """
        return self.build_call(request.job_name, request.params, request.options, now, input_param)

    def build_call(
        self,
        name: str,
        params: object,
        options: Mapping[str, Any],
        now: float,
        input_param: str | None = None,
    ) -> JobSpec:
        """`build` without a `JobRequest` (one fewer object per single enqueue); raises the same."""
        job_name = self.registry.resolve(name)
        params = _check_params(job_name, params)
        if input_param is not None:
            params = _with_input(self.registry, job_name, params, input_param)
        else:
            self.registry.check_params(job_name, params)  # declared params: before any fast path
        if not options:
            return self._plain(job_name, params)
        if not OPTION_NAMES.issuperset(options):
            name = min(set(options) - OPTION_NAMES)
            raise InvalidOptionError(name, options[name], "is not an enqueue option")
        get = options.get
        if type(get("require_worker", False)) is not bool:
            raise InvalidOptionError("require_worker", get("require_worker"), "must be True or False")
        depends_on = _check_depends_on(get("depends_on"))
        run_at, run_in = _check_schedule(get("delay"), get("at"), now)
        if depends_on and (run_at is not None or run_in is not None):
            raise InvalidOptionError("depends_on", depends_on, "cannot be combined with delay or at")
        meta = _check_meta(get("meta"))
        job_id = get("job_id")
        data, signature = self._serialize(job_name, params)
        settings = self.settings
        return JobSpec(
            job_id=check_job_id(job_id, scheduled=False) if job_id is not None else os.urandom(16).hex(),
            explicit_id=job_id is not None,
            job_name=job_name,
            params=params,
            queue=self._queue(get("priority", "default")),
            data=data,
            signature=signature,
            description=describe(job_name, params),
            timeout=_seconds("timeout", get("timeout"), settings.job_timeout),
            result_ttl=_seconds("result_ttl", get("result_ttl"), settings.result_ttl),
            failure_ttl=_seconds("failure_ttl", get("failure_ttl"), settings.failure_ttl),
            ttl=_optional_seconds("ttl", get("ttl"), settings.ttl),
            retry_intervals=tuple(self._retry(get("retry")).intervals()),
            run_at=run_at,
            run_in=run_in,
            depends_on=depends_on,
            meta=meta,
            meta_blob=self.serializer.dumps(meta) if meta else None,
            limit_key=_check_limit_key(get("limit_key")),
            version=self.registry.version(job_name),
        )

    def _plain(self, job_name: str, params: dict[str, Any]) -> JobSpec:
        """`build` of a request without options: its defaults computed once (5 us less per enqueue)."""
        data, signature = self._serialize(job_name, params)
        intervals = tuple(self._default_retry.intervals())
        return JobSpec(
            os.urandom(16).hex(), False, job_name, params, self._queues["default"], data, signature,
            describe(job_name, params), *self._default_limits, intervals, None, None, (), {}, None,
            self.registry.version(job_name),
        )  # fmt: skip

    def _queue(self, priority: object) -> str:
        queue = self._queues.get(priority) if isinstance(priority, str) else None
        if queue is None:
            raise InvalidOptionError("priority", priority, f"must be one of {', '.join(PRIORITIES)}")
        return queue

    def _serialize(self, job_name: str, params: dict[str, Any]) -> tuple[bytes, bytes]:
        try:
            raw, tag = dumps_job_data(self.serializer, (job_name, TASKQ_ONLY, (), params))
        except Exception as exc:
            key = find_unserializable_key(self.serializer, params)
            raise SerializationError(job_name, f"{type(exc).__name__}: {exc}", key) from exc
        if len(raw) > self.settings.max_payload_bytes:
            raise PayloadTooLargeError(job_name, len(raw), self.settings.max_payload_bytes)
        if b"__main__" in raw:  # rare, and cheap to look for: only then is each value walked
            refuse_main_objects(job_name, params)
        return compress(raw), tag

    def _retry(self, retry: object) -> RetryPolicy:
        if retry is None:
            return self._default_retry
        if isinstance(retry, bool) or not isinstance(retry, int | RetryPolicy):
            raise InvalidOptionError("retry", retry, "must be an int (retries) or a RetryPolicy")
        if isinstance(retry, int):
            if not 0 <= retry <= 100:
                raise InvalidOptionError("retry", retry, "must be between 0 and 100")
            return RetryPolicy(
                max_retries=retry,
                base=self._default_retry.base,
                factor=self._default_retry.factor,
                cap=self._default_retry.cap,
                jitter=self._default_retry.jitter,
            )
        _check_policy(retry)
        return retry


def compress(raw: bytes) -> bytes:
    """rq's stored form of serialized job data (see COMPRESS_FROM)."""
    return zlib.compress(raw, 1) if len(raw) >= COMPRESS_FROM else raw


def describe(job_name: str, params: Mapping[str, Any]) -> str:
    """rq's description format, `job_name(k=v, ...)`, with each value's repr bounded."""
    args = ", ".join(sorted(f"{k}={_short_repr(v)}" for k, v in params.items()))
    return f"{job_name}({args})"


def _short_repr(value: Any) -> str:
    # Numbers and short strings are most params; reprlib (bounded for anything big) is slower.
    if type(value) in (int, float, bool) or value is None:
        return repr(value)
    if type(value) is str and len(value) <= _describe.maxstring:
        return repr(value)
    return _describe.repr(value)


def _check_params(job_name: str, params: object) -> dict[str, Any]:
    if type(params) is dict and all(type(key) is str for key in params):
        return dict(params)
    if not isinstance(params, Mapping):
        raise InvalidParamsError(
            job_name, f"must be a mapping of str keys (omit it for none), not {type(params).__name__}"
        )
    for key in params:
        if not isinstance(key, str):
            raise InvalidParamsError(job_name, f"keys must be str, got {key!r} ({type(key).__name__})", key)
    return dict(params)


def _with_input(registry: JobRegistry, job_name: str, params: dict[str, Any], name: str) -> dict[str, Any]:
    if name in params:
        raise InvalidParamsError(
            job_name, f"{name!r} is passed by the workflow; leave it out of params", name
        )
    registry.check_params(job_name, params, pending=name)
    return {**params, name: dict(INPUT_MARK)}


def _check_depends_on(depends_on: object) -> tuple[str, ...]:
    if depends_on is None:
        return ()
    items = (depends_on,) if isinstance(depends_on, str) else depends_on
    if not isinstance(items, Sequence) or not items:
        raise InvalidOptionError("depends_on", depends_on, "must be a job id or a non-empty list of job ids")
    return tuple(dict.fromkeys(check_job_id(item) for item in items))


def _check_schedule(delay: object, at: object, now: float) -> tuple[float | None, float | None]:
    """(run_at, run_in): when the job is due, absolute (`at`) or relative (`delay`); (None, None) now."""
    if delay is None and at is None:
        return None, None
    if delay is not None and at is not None:
        raise InvalidOptionError("delay", delay, "give delay or at, not both")
    if delay is not None:
        if isinstance(delay, timedelta):
            seconds = delay.total_seconds()
        elif isinstance(delay, int | float) and not isinstance(delay, bool):
            seconds = float(delay)
        else:
            raise InvalidOptionError("delay", delay, "must be a timedelta or a number of seconds")
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
            raise InvalidOptionError("delay", delay, f"must be 0 to {MAX_SECONDS} seconds (ten years)")
        return None, (seconds if seconds > 0 else None)
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidOptionError("at", at, "must be a timezone-aware datetime")
    if at.timestamp() > now + MAX_SECONDS:
        raise InvalidOptionError("at", at, "must be within ten years")
    return (at.timestamp() if at.timestamp() > now else None), None


def _check_meta(meta: object) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, Mapping) or not all(isinstance(k, str) for k in meta):
        raise InvalidOptionError("meta", meta, "must be a mapping of str keys")
    try:
        size = len(json.dumps(meta, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidOptionError("meta", meta, f"must be JSON-safe: {exc}") from exc
    if size > MAX_META_BYTES:
        raise InvalidOptionError("meta", f"<{size} bytes>", f"must be at most {MAX_META_BYTES} bytes as JSON")
    return dict(meta)


def _check_limit_key(key: object) -> str:
    if key is None:
        return ""
    if not isinstance(key, str) or not LIMIT_KEY_RE.fullmatch(key):
        raise InvalidOptionError("limit_key", key, "limit keys must match [A-Za-z0-9_.@-]{1,128}")
    return key


def _optional_seconds(option: str, value: object, default: int | None) -> int | None:
    return None if value is None and default is None else _seconds(option, value, default)


def _seconds(option: str, value: object, default: int | None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidOptionError(option, value, "must be a number of seconds")
    if value <= 0:
        raise InvalidOptionError(option, value, "must be more than 0 seconds")
    if value > MAX_SECONDS:
        raise InvalidOptionError(option, value, f"must be at most {MAX_SECONDS} seconds (ten years)")
    return math.ceil(value)


def _check_policy(policy: RetryPolicy) -> None:
    checks = {
        "max_retries": isinstance(policy.max_retries, int) and 0 <= policy.max_retries <= 100,
        "base": _finite(policy.base) and 0 <= policy.base <= MAX_SECONDS,
        "factor": _finite(policy.factor) and policy.factor >= 1,
        "cap": _finite(policy.cap) and 0 <= policy.cap <= MAX_SECONDS,
        "jitter": _finite(policy.jitter) and 0 <= policy.jitter <= 1,
    }
    for name, ok in checks.items():
        if not ok:
            raise InvalidOptionError(f"retry.{name}", getattr(policy, name), "is out of range")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def spec_record(spec: JobSpec, trace: str = "", pack: Callable[..., list[Any]] = pack_record) -> list[Any]:
    """The job as the enqueue scripts read it (`schema.JOB_RECORD`, then its dependencies).

    `trace` is the producer's trace context ('' = none). The enqueue time is Redis's. With
    `pack=schema.pack_fields`, the hash pairs it fills instead (what enqueue_one takes).
    """
    intervals = spec.retry_intervals
    return pack(
        job_id=spec.job_id,
        queue=spec.queue,
        run_at="" if spec.run_at is None else repr(spec.run_at),
        run_in="" if spec.run_in is None else repr(spec.run_in),
        ttl=spec.ttl or "",
        data=spec.data,
        sig=spec.signature,
        description=spec.description,
        timeout=spec.timeout,
        result_ttl=spec.result_ttl,
        failure_ttl=spec.failure_ttl,
        retries=len(intervals),
        retry_intervals="[" + ",".join(map(repr, intervals)) + "]",
        meta=spec.meta_blob or b"",
        trace=trace,
        limit_key=spec.limit_key,
        version=spec.version,
        depends_on=spec.depends_on,
    )
