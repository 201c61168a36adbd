"""What a producer sends and how it reads the replies, without the I/O: shared by both adapters.

`RQQueue` (redis-py) and `AsyncRQQueue` (redis.asyncio) differ only in how they talk to Redis;
every script argument, every reply and every error is decided here, once, so the two cannot drift:
the args of each script come from its schema Layout, the replies become our errors.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app import tracing
from app.config import Settings
from app.infrastructure.queue import keys, telemetry
from app.infrastructure.queue.directory import LiveWorker
from app.infrastructure.queue.errors import (
    BatchError,
    DependencyError,
    InvalidOptionError,
    JobNotFoundError,
    JobStateError,
    NoWorkerError,
    QueueError,
    QueueReplicationError,
    WaitTimeoutError,
)
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.job_spec import JobSpec, JobSpecBuilder, spec_record
from app.infrastructure.queue.port import JobRequest, JobView
from app.infrastructure.queue.record import JobRecord, text
from app.infrastructure.queue.schema import GROUPS, Field, JobStatus, pack_fields, packer
from app.infrastructure.queue.serialization import Serializer
from app.infrastructure.queue.views import job_view

#: The most jobs one enqueue script writes: ~3 ms of Redis's time on a 2-core VM, so no other
#: client waits long behind a big batch (measured: ~30 us of script time per job).
BATCH_CHUNK = 100
#: `wait()` blocks on the job's result stream for at most this long between two reads of it.
WAIT_SLICE_MS = 500

_enqueue_one_args = packer("enqueue_one")
_enqueue_args = packer("enqueue")
_cancel_args = packer("cancel")


class WriteCall:
    """One enqueue script call: which script (`enqueue_one` or `enqueue`) and its ARGV, per try.

    `next_args()` gives the first try's arguments, then a retry's: a generated id's first call
    skips the live-job check (it cannot belong to another job); a retry (its reply was lost, or
    too few replicas acknowledged it) asks for the job in any state (`check_live='2'`): it can
    only be this call's own.
    """

    def __init__(
        self, script: str, build: Callable[[str], list[Any]], first: str, retry: str, registers: str | None
    ) -> None:
        self.script, self.registers = script, registers  # the queue it adds to rq:queues
        self._build, self._retry = build, retry
        self._args: list[Any] | None = build(first)

    def next_args(self) -> list[Any]:
        args, self._args = self._args, None
        return args if args is not None else self._build(self._retry)


@dataclass(frozen=True)
class Parts:
    """What a producer is built from: its settings, registry, serializer and request builder."""

    settings: Settings
    registry: JobRegistry
    serializer: Serializer
    builder: JobSpecBuilder


def producer_parts(
    client_kwargs: Mapping[str, Any],
    settings: Settings | None,
    registry: JobRegistry | None,
    serializer: Serializer | None,
) -> Parts:
    """A producer's parts, the composition root building what was not given (`RQQueue(client)`).

    Raises:
        InvalidOptionError: the client decodes responses (rq stores bytes).
    """
    if client_kwargs.get("decode_responses"):
        raise InvalidOptionError(
            "redis_conn", "decode_responses=True", "rq stores bytes; pass a plain client"
        )
    from app import bootstrap  # the composition root (it imports the producers)

    settings = settings if settings is not None else bootstrap.default_settings()
    registry = registry or bootstrap.registry_for(settings)
    serializer = serializer or bootstrap.serializer_for(settings)
    return Parts(settings, registry, serializer, JobSpecBuilder(settings, registry, serializer))


def plan_batch(
    builder: JobSpecBuilder, requests: Iterable[JobRequest]
) -> tuple[list[JobSpec], list[JobSpec]]:
    """Every request of a batch validated before anything is written: (specs, those asking
    `require_worker`). The first bad request raises, for the whole batch."""
    now = time.time()
    requests = list(requests)
    specs = [builder.build(request, now) for request in requests]
    wanted = [s for s, r in zip(specs, requests, strict=True) if r.options.get("require_worker")]
    return specs, wanted


def batch_failed(written: list[str], specs: Sequence[JobSpec], exc: QueueError) -> BatchError:
    """The error of a chunk that failed after earlier ones were written: a `BatchError` listing them."""
    return BatchError(written, len(specs), exc)


def wait_slice(view: JobView, deadline: float, timeout: float) -> float | None:
    """How long `wait` blocks next (ms); None once the job is final.

    Raises:
        WaitTimeoutError: still not final after `timeout` seconds.
    """
    if view.is_final:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise WaitTimeoutError(view.id, timeout, view.status.value)
    return min(remaining * 1000, WAIT_SLICE_MS)


def write_call(specs: Sequence[JobSpec], registered: set[str]) -> WriteCall:
    """The call that writes `specs`: the one-job script for a lone job without dependencies."""
    trace = tracing.current_carrier()
    if len(specs) == 1 and not specs[0].depends_on:
        spec = specs[0]
        register = spec.queue not in registered

        def one(check_live: str) -> list[Any]:
            _, args = _enqueue_one_args(
                check_live=check_live,
                register="1" if register else "0",
                job_id=spec.job_id,
                queue=spec.queue,
                run_at="" if spec.run_at is None else repr(spec.run_at),
                run_in="" if spec.run_in is None else repr(spec.run_in),
                ttl=spec.ttl or "",
                limit_key=spec.limit_key,
                fields=spec_record(spec, trace, pack_fields),
            )
            return list(args)

        explicit = spec.explicit_id
        return WriteCall("enqueue_one", one, "1" if explicit else "0", "1" if explicit else "2", spec.queue)

    def batch(_: str) -> list[Any]:
        records = [value for spec in specs for value in spec_record(spec, trace)]
        _, args = _enqueue_args(count=len(specs), jobs=records)
        return list(args)

    return WriteCall("enqueue", batch, "", "", None)


def not_replicated(exc: QueueReplicationError, specs: Sequence[JobSpec]) -> QueueReplicationError:
    """The error of a write too few replicas acknowledged, naming its jobs (safe to enqueue again)."""
    return QueueReplicationError(exc.url, str(exc.__cause__), tuple(spec.job_id for spec in specs))


def written(specs: Sequence[JobSpec], call: WriteCall, reply: Sequence[Any]) -> None:
    """Read the enqueue script's reply: a dependency it refused raises, the rest is logged."""
    if call.script == "enqueue_one":
        reply = ["ok", *reply]
    elif reply[0] == b"dependency":
        spec = specs[int(reply[1]) - 1]
        raise DependencyError(spec.job_id, text(reply[2]), text(reply[3]) or None)
    if telemetry.log.isEnabledFor(logging.INFO):
        telemetry.log_enqueued(specs, reply)


def chunks(specs: Sequence[JobSpec]) -> Iterator[Sequence[JobSpec]]:
    """A large batch in calls of BATCH_CHUNK jobs, each short for Redis."""
    for start in range(0, len(specs), BATCH_CHUNK):
        yield specs[start : start + BATCH_CHUNK]


def outside_dependencies(specs: Sequence[JobSpec]) -> list[str]:
    """The jobs a batch depends on outside itself (checked before a chunked batch is written)."""
    inside = {spec.job_id for spec in specs}
    return sorted({dep for spec in specs for dep in spec.depends_on} - inside)


def check_dependencies(specs: Sequence[JobSpec], outside: Sequence[str], statuses: Sequence[Any]) -> None:
    """Raises `DependencyError` for the first dependency that is missing or can no longer finish."""
    found = {dep: text(raw) if raw else None for dep, raw in zip(outside, statuses, strict=True)}
    doomed = {status.value for status in GROUPS["doomed"]}
    for spec in specs:
        for dep in spec.depends_on:
            if dep in found and (found[dep] is None or found[dep] in doomed):
                raise DependencyError(spec.job_id, dep, found[dep])


def check_known(specs: Sequence[JobSpec], live: Sequence[LiveWorker]) -> None:
    """Raises `NoWorkerError` for the first job no live worker of its queue knows (name and version)."""
    for spec in specs:
        if not any(worker.knows(spec.job_name, spec.version, spec.queue) for worker in live):
            raise NoWorkerError(spec.job_name, spec.version, spec.queue)


def view(
    job_id: str, fields: Mapping[bytes, bytes], results: Sequence[Any], serializer: Serializer, limit: int
) -> JobView:
    """The job's view from its hash and the last entry of its result stream."""
    if not fields:
        raise JobNotFoundError(job_id)
    last = results[0][1] if results else {}
    return job_view(JobRecord(job_id, fields), last, serializer, limit)


def cancel_args(job_id: str) -> list[Any]:
    keys.check_job_id(job_id)
    _, args = _cancel_args(job_id=job_id)
    return list(args)


def canceled(job_id: str, reply: Sequence[Any]) -> None:
    """Read the cancel script's reply: a missing job or one past cancelling raises."""
    if reply[0] == -1:
        raise JobNotFoundError(job_id)
    if reply[0] == 0:
        raise JobStateError(job_id, text(reply[1]), "cancel")


STOP_FIELDS = [Field.STATUS, Field.WORKER_NAME]


def stop_message(job_id: str, status: Any, worker: Any) -> tuple[str, str]:
    """(channel, payload) of rq's stop-job command for the job's worker; raises if it is not running."""
    if status is None:
        raise JobNotFoundError(job_id)
    if text(status) != JobStatus.STARTED.value or not worker:
        raise JobStateError(job_id, text(status), "stop")
    payload = json.dumps({"command": "stop-job", "job_id": job_id})
    return keys.key("pubsub", text(worker)), payload


def not_listening(job_id: str, worker: Any) -> JobStateError:
    return JobStateError(job_id, f"started on worker {text(worker)}, which is not listening", "stop")
