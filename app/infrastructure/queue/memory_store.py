"""Redis's part of taskq, in dicts: job hashes in rq's fields, queues, registries, last results.

`InMemoryQueue` writes here what `RQQueue`'s scripts write in Redis, and the real `JobRunner`
claims, runs and records through the `JobStore` port here as the worker does through Redis.
Every status change is one of `schema.TRANSITIONS`, checked the same way as in the scripts.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from app.infrastructure.queue.errors import DependencyError, JobNotFoundError, JobStateError
from app.infrastructure.queue.job_spec import JobSpec, spec_record
from app.infrastructure.queue.memory_workflows import MemoryWorkflows
from app.infrastructure.queue.record import rq_time
from app.infrastructure.queue.schema import (
    GROUPS,
    RESULT_TYPES,
    TRANSITIONS,
    Ending,
    Field,
    JobStatus,
    SchemaError,
    record_fields,
)
from app.infrastructure.queue.store import Beat, Claim, ClaimReply, Recorded

if TYPE_CHECKING:
    from app.infrastructure.queue.workflows import PlannedJob

Hash = dict[bytes, bytes]
_S = JobStatus
_LIVE = {status.value for status in GROUPS["live"]}
_DOOMED = {status.value for status in GROUPS["doomed"]}


def _b(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class MemoryStore:
    """The store: what `enqueue`, `cancel` and `get` write and read, and a `JobStore` for the runner."""

    def __init__(self, queues: Sequence[str], clock: Callable[[], float]) -> None:
        self.queues = list(queues)  # highest priority first
        self.clock = clock
        self.jobs: dict[str, Hash] = {}
        self.expires: dict[str, float] = {}
        self.lists: dict[str, deque[str]] = {queue: deque() for queue in self.queues}
        self.scheduled: dict[str, float] = {}
        self.dependents: dict[str, set[str]] = {}
        self.waiting_on: dict[str, set[str]] = {}
        self.results: dict[str, Hash] = {}
        self.workflows = MemoryWorkflows(self)

    # -- what the producer does ------------------------------------------------------------------

    def read(self, job_id: str) -> tuple[Hash, Hash] | None:
        """The job hash and its last result, or None when there is no such job (or it expired)."""
        expires = self.expires.get(job_id)
        if expires is not None and self.clock() >= expires:
            self.jobs.pop(job_id, None)
        fields = self.jobs.get(job_id)
        return None if fields is None else (fields, self.results.get(job_id, {}))

    def status(self, job_id: str) -> str | None:
        found = self.read(job_id)
        return found[0][Field.STATUS.encode()].decode() if found else None

    def create(self, specs: Sequence[JobSpec]) -> list[JobSpec]:
        """Write the jobs of a batch, all or nothing; the specs actually created (live ids are not).

        Raises:
            DependencyError: a dependency is missing or can never finish; nothing was written.
        """
        plan: dict[str, tuple[JobSpec, str, set[str]]] = {}
        for spec in specs:
            if spec.job_id in plan or (spec.explicit_id and self.status(spec.job_id) in _LIVE):
                continue
            pending = set()
            for dep in spec.depends_on:
                status = plan[dep][1] if dep in plan else self.status(dep)
                if status is None or status in _DOOMED:
                    raise DependencyError(spec.job_id, dep, status)
                if status != _S.FINISHED.value:
                    pending.add(dep)
            due = spec.run_at is not None or spec.run_in is not None
            status = _S.DEFERRED if pending else _S.SCHEDULED if due else _S.QUEUED
            plan[spec.job_id] = (spec, status.value, pending)
        for spec, status, pending in plan.values():
            self._write(spec, status, pending)
        return [spec for spec, _, _ in plan.values()]

    def _write(self, spec: JobSpec, status: str, pending: set[str]) -> None:
        self.results.pop(spec.job_id, None)
        stamp = rq_time(self.clock())
        fields = {Field.CREATED_AT: stamp, Field.ENQUEUED_AT: stamp, **record_fields(spec_record(spec))}
        self.jobs[spec.job_id] = {_b(k): _b(v) for k, v in fields.items()}
        self.expires.pop(spec.job_id, None)
        self._move(spec.job_id, "create", status)
        if status == _S.DEFERRED.value:
            self.waiting_on[spec.job_id] = pending
            for dep in pending:
                self.dependents.setdefault(dep, set()).add(spec.job_id)
        elif status == _S.SCHEDULED.value:
            self.scheduled[spec.job_id] = spec.run_at or self.clock() + (spec.run_in or 0.0)
        else:
            self.lists[spec.queue].append(spec.job_id)
        if spec.ttl is not None:
            self.expires[spec.job_id] = self.clock() + spec.ttl

    def cancel(self, job_id: str) -> None:
        """Raises: JobNotFoundError, JobStateError (the job started or ended already)."""
        status = self.status(job_id)
        if status is None:
            raise JobNotFoundError(job_id)
        if not TRANSITIONS["cancel"].allows(status):
            raise JobStateError(job_id, status, "cancel")
        self._unlist(job_id)
        self._move(job_id, "cancel", _S.CANCELED.value, ended=True)
        self._expire(job_id, Field.FAILURE_TTL)
        self.workflows.job_ended(job_id, _S.CANCELED.value)

    # -- what the worker does (the JobStore port) --------------------------------------------------

    def claim(self, execution_id: str) -> ClaimReply:
        now = self.clock()
        for job_id, due in sorted(self.scheduled.items(), key=lambda item: item[1]):
            status = self.status(job_id)
            if due <= now and TRANSITIONS["promote"].allows(status):
                del self.scheduled[job_id]
                self._back_to_queue(job_id, "promote", at_front=False)
            elif due <= now and status is None:
                del self.scheduled[job_id]
                self.workflows.vanished(job_id)  # expired while scheduled
        for queue in self.queues:
            while self.lists[queue]:
                job_id = self.lists[queue].popleft()
                status = self.status(job_id)
                if TRANSITIONS["claim"].allows(status):
                    return self._claimed(queue, job_id, execution_id, now)
                if status is None:
                    self.workflows.vanished(job_id)  # its TTL ran out while it waited
        return ClaimReply([b"", b"", b"0"], execution_id, now)

    def _claimed(self, queue: str, job_id: str, execution_id: str, now: float) -> ClaimReply:
        job = self.jobs[job_id]
        fields = [value for pair in job.items() for value in pair]
        attempts = int(job.get(Field.ATTEMPTS.encode(), b"0")) + 1
        self._move(job_id, "claim", _S.STARTED.value, started=True)
        job[Field.ATTEMPTS.encode()] = _b(attempts)
        self.expires.pop(job_id, None)
        return ClaimReply([queue.encode(), job_id.encode(), attempts, *fields], execution_id, now)

    def finish(
        self, claim: Claim, return_blob: str, next_execution_id: str | None
    ) -> tuple[Recorded, ClaimReply | None]:
        result = {b"type": _b(RESULT_TYPES["successful"])}
        if return_blob:
            result[b"return_value"] = return_blob.encode()
        self.results[claim.job_id] = result
        self._move(claim.job_id, "finish", _S.FINISHED.value, ended=True)
        self._expire(claim.job_id, Field.RESULT_TTL)
        self._release(claim.job_id, return_blob)
        if claim.job_id in self.workflows.index:
            self.workflows.job_ended(claim.job_id, _S.FINISHED.value, return_blob)
        return Recorded.DONE, None if next_execution_id is None else self.claim(next_execution_id)

    def fail(self, claim: Claim, ending: Ending, retry_in: float | None, error: str) -> Recorded:
        job_id = claim.job_id
        job = self.jobs[job_id]
        if ending is Ending.HANDBACK:
            self._hand_back(job_id, self.clock() + (retry_in or 0.0), error)
            return Recorded.DONE
        job[Field.EXC_INFO.encode()] = error.encode()
        if ending is Ending.REQUEUE:
            self._back_to_queue(job_id, "requeue", at_front=True)
        elif ending is Ending.SNOOZE:
            job[Field.ATTEMPTS.encode()] = _b(max(int(job.get(Field.ATTEMPTS.encode(), b"1")) - 1, 0))
            self._move(job_id, "snooze", _S.SCHEDULED.value)
            self.scheduled[job_id] = self.clock() + (retry_in or 0.0)
        elif ending is Ending.RETRY:
            job[Field.RETRIES_LEFT.encode()] = _b(max(int(job[Field.RETRIES_LEFT.encode()]) - 1, 0))
            if retry_in is not None:
                self._move(job_id, "retry", _S.SCHEDULED.value)
                self.scheduled[job_id] = self.clock() + retry_in
            else:
                self._back_to_queue(job_id, "retry", at_front=False)
        else:
            status, kind = (_S.STOPPED, "stopped") if ending is Ending.STOPPED else (_S.FAILED, "failed")
            self.results[job_id] = {
                b"type": _b(RESULT_TYPES[kind]),
                b"exc_string": base64.b64encode(error.encode()),
            }
            self._move(job_id, "fail", status.value, ended=True)
            self._expire(job_id, Field.FAILURE_TTL)
            self.workflows.job_ended(job_id, status.value)
        return Recorded.DONE

    def _hand_back(self, job_id: str, retry_at: float, reason: str) -> None:
        """As `handback.lua`: scheduled again, the claim's attempt given back, first time kept."""
        job = self.jobs[job_id]
        attempts = max(int(job.get(Field.ATTEMPTS.encode(), b"1")) - 1, 0)
        job.setdefault(Field.UNKNOWN_SINCE.encode(), _b(repr(self.clock())))
        self._move(job_id, "handback", _S.SCHEDULED.value)
        job[Field.ATTEMPTS.encode()] = _b(attempts)
        job[Field.REASON.encode()] = reason.encode()
        self.scheduled[job_id] = retry_at

    def wait_and_claim(self, timeout: float, execution_id: str) -> ClaimReply | None:
        return self.claim(execution_id)

    def heartbeat(self, claim: Claim | None) -> Beat:
        return Beat(None if claim is None else True, True)  # nothing dies in memory

    def recover(self, execution_id: str) -> list[str]:
        return []

    def flush_counts(self) -> None:
        pass

    def write_meta(self, job_id: str, blob: bytes) -> None:
        if job_id in self.jobs:
            self.jobs[job_id][Field.META.encode()] = blob

    # -- the rules, as the scripts apply them ----------------------------------------------------

    def _move(
        self, job_id: str, transition: str, status: str, *, started: bool = False, ended: bool = False
    ) -> None:
        if JobStatus(status) not in TRANSITIONS[transition].targets:
            raise SchemaError(f"{transition} cannot end in {status}")
        job = self.jobs[job_id]
        job[Field.STATUS.encode()] = status.encode()
        stamp = _b(rq_time(self.clock()))
        if started:
            job[Field.STARTED_AT.encode()] = job[Field.LAST_HEARTBEAT.encode()] = stamp
        if ended:
            job[Field.ENDED_AT.encode()] = stamp

    def _back_to_queue(self, job_id: str, transition: str, at_front: bool) -> None:
        self._move(job_id, transition, _S.QUEUED.value)
        self.jobs[job_id][Field.ENQUEUED_AT.encode()] = _b(rq_time(self.clock()))
        queue = self.jobs[job_id][Field.ORIGIN.encode()].decode()
        (self.lists[queue].appendleft if at_front else self.lists[queue].append)(job_id)

    def _expire(self, job_id: str, ttl_field: str) -> None:
        self.expires[job_id] = self.clock() + int(self.jobs[job_id][ttl_field.encode()])

    def _unlist(self, job_id: str) -> None:
        queue = self.jobs[job_id][Field.ORIGIN.encode()].decode()
        if job_id in self.lists[queue]:
            self.lists[queue].remove(job_id)
        self.scheduled.pop(job_id, None)
        self.waiting_on.pop(job_id, None)

    def _release(self, job_id: str, value: str = "") -> None:
        for dep in sorted(self.dependents.pop(job_id, set())):
            waiting = self.waiting_on.get(dep)
            if waiting is None or not TRANSITIONS["release"].allows(self.status(dep)):
                continue
            waiting.discard(job_id)
            if not any(self._unmet(parent) for parent in waiting):
                self.give_input(dep, json.dumps({"kind": "result", **({"value": value} if value else {})}))
                self.release_waiting(dep)

    def _unmet(self, parent: str) -> bool:
        """A dependency not finished: a gone one finished long ago, unless it is a pending member."""
        status = self.status(parent)
        return status != _S.FINISHED.value if status is not None else parent in self.workflows.index

    # -- what the workflow engine does (memory_workflows.py) -------------------------------------

    def write_workflow_job(self, job: PlannedJob) -> None:
        """Write one job of a workflow, as workflow.lua does: a job that waits has no expiry yet."""
        spec = job.spec
        due = spec.run_at is not None or spec.run_in is not None
        deferred = bool(spec.depends_on) or bool(job.role)
        status = _S.DEFERRED if deferred else _S.SCHEDULED if due else _S.QUEUED
        self._write(spec, status.value, set(spec.depends_on))
        if deferred:
            self.expires.pop(spec.job_id, None)
        fields = {Field.WORKFLOW: job.workflow, Field.WF_ROLE: job.role, Field.DEP_POLICY: job.dep_policy}
        fields[Field.WANTS_INPUT] = "1" if job.wants_input else ""
        self.jobs[spec.job_id].update({_b(k): _b(v) for k, v in fields.items() if v})

    def field(self, job_id: str, name: str) -> str | None:
        raw = self.jobs.get(job_id, {}).get(name.encode())
        return raw.decode() if raw is not None else None

    def give_input(self, job_id: str, document: str) -> None:
        if self.field(job_id, Field.WANTS_INPUT) == "1":
            self.jobs[job_id][Field.INPUT.encode()] = document.encode()

    def release_waiting(self, job_id: str) -> None:
        """A deferred job goes to its queue; a workflow's job's TTL starts now."""
        self._unlist(job_id)
        self._back_to_queue(job_id, "release", at_front=False)
        ttl = self.field(job_id, Field.TTL)
        if ttl and self.field(job_id, Field.WORKFLOW):
            self.expires[job_id] = self.clock() + int(ttl)

    def cancel_waiting(self, job_id: str, reason: str) -> None:
        """A deferred job that can never run ends canceled, with the reason."""
        self._unlist(job_id)
        self._move(job_id, "cascade", _S.CANCELED.value, ended=True)
        self.jobs[job_id][Field.REASON.encode()] = reason.encode()
        if self.field(job_id, Field.WORKFLOW) or self.field(job_id, Field.WF_ROLE):
            self._expire(job_id, Field.FAILURE_TTL)
