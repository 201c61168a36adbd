"""A workflow as `workflow()` and `taskq group` see it: `WorkflowView`, read from Redis (or built
from the in-memory store's dicts) the same way, so both adapters describe it alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from app.infrastructure.queue import keys
from app.infrastructure.queue.errors import WorkflowNotFoundError
from app.infrastructure.queue.record import parse_rq_time, text
from app.infrastructure.queue.schema import KEYS, Field, JobStatus, WorkflowField, WorkflowState
from app.infrastructure.redis.connection import Guard

_WAITING = {JobStatus.QUEUED.value, JobStatus.SCHEDULED.value, JobStatus.DEFERRED.value}
_ROLES = (WorkflowField.ON_SUCCESS, WorkflowField.ON_FAILURE, WorkflowField.ON_COMPLETE)


@dataclass(frozen=True)
class WorkflowView:
    """A snapshot of a chain or a group: its outcome so far and its members' counts.

    `state` is `open` until decided, then `succeeded` or `failed` (once); `closed` once every
    member has settled. A member in progress is `running` (its job started; a chain: one of its
    jobs started or ended) or `queued` (waiting: queued, scheduled, deferred).
    """

    id: str
    kind: str
    state: str
    total: int
    finished: int
    failed: int  # failed for good, or stopped
    canceled: int
    expired: int
    ignored: int  # of the failed, canceled and expired: those whose edge said `ignore`
    running: int
    queued: int
    closed: bool
    created_at: datetime | None
    ended_at: datetime | None
    callbacks: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)  # role -> (id, status)
    failures: Mapping[str, str] = field(default_factory=dict)  # listed: member id -> how it ended
    truncated: bool = False
    first_failure: str | None = None
    parent: str | None = None

    @property
    def settled(self) -> int:
        return self.finished + self.failed + self.canceled + self.expired

    @property
    def is_final(self) -> bool:
        """Its outcome is decided and every member has settled."""
        return self.closed and self.state != WorkflowState.OPEN


def build_view(
    workflow_id: str,
    fields: Mapping[str, str],
    pending: Sequence[str],
    callbacks: Mapping[str, tuple[str, str | None]],
    failures: Mapping[str, str],
) -> WorkflowView:
    """The view of a workflow record (`fields`, text), its pending members' states (`running`
    or `queued`), its callbacks and its listed failures."""

    def count(name: str) -> int:
        try:
            return int(fields.get(name) or 0)
        except ValueError:
            return 0

    running = sum(state == "running" for state in pending)
    return WorkflowView(
        id=workflow_id,
        kind=fields.get(WorkflowField.KIND, ""),
        state=fields.get(WorkflowField.STATE, WorkflowState.OPEN),
        total=count(WorkflowField.TOTAL),
        finished=count(WorkflowField.FINISHED),
        failed=count(WorkflowField.FAILED) + count(WorkflowField.STOPPED),
        canceled=count(WorkflowField.CANCELED),
        expired=count(WorkflowField.EXPIRED),
        ignored=count(WorkflowField.IGNORED),
        running=running,
        queued=len(pending) - running,
        closed=bool(fields.get(WorkflowField.CLOSED_AT)),
        created_at=parse_rq_time(fields.get(WorkflowField.CREATED_AT)),
        ended_at=parse_rq_time(fields.get(WorkflowField.ENDED_AT)),
        callbacks=dict(callbacks),
        failures=dict(failures),
        truncated=fields.get(WorkflowField.TRUNCATED) == "1",
        first_failure=fields.get(WorkflowField.FIRST_FAILURE) or None,
        parent=fields.get(WorkflowField.PARENT) or None,
    )


def member_state(status: str | None) -> str:
    """A pending job member's state: running once started (or ended, not yet counted), else queued."""
    return "queued" if status is None or status in _WAITING else "running"


def read_workflow(connection: redis.Redis, guard: Guard, workflow_id: str) -> WorkflowView:
    """Read a workflow from Redis: three pipelined round trips, however many members it has.

    Raises:
        InvalidOptionError: not a valid id. WorkflowNotFoundError: no such workflow.
    """
    keys.check_job_id(workflow_id, scheduled=False)

    def first() -> list[Any]:
        with connection.pipeline(transaction=False) as pipe:
            pipe.hgetall(KEYS["wf"].format(workflow_id))
            pipe.hgetall(KEYS["wf_members"].format(workflow_id))
            pipe.hgetall(KEYS["wf_failures"].format(workflow_id))
            return pipe.execute()

    raw, members, failures = guard.call(first)
    if not raw:
        raise WorkflowNotFoundError(workflow_id)
    fields = {text(k): text(v) for k, v in raw.items()}
    pending = [(text(m), text(p).startswith("wf:")) for m, p in members.items()]
    roles = [(role, fields[role]) for role in _ROLES if role in fields]
    states, statuses = guard.call(lambda: _second(connection, pending, roles))
    callbacks = {role: (job_id, status) for (role, job_id), status in zip(roles, statuses, strict=True)}
    return build_view(workflow_id, fields, states, callbacks, {text(k): text(v) for k, v in failures.items()})


def _second(
    connection: redis.Redis, pending: list[tuple[str, bool]], roles: list[tuple[str, str]]
) -> tuple[list[str], list[str | None]]:
    """The pending members' states (a chain's: from its record and its own pending jobs) and the
    callbacks' statuses."""
    with connection.pipeline(transaction=False) as pipe:
        for member, sub in pending:
            if sub:
                pipe.hmget(KEYS["wf"].format(member), [WorkflowField.FINISHED, WorkflowField.FAILED])
                pipe.hgetall(KEYS["wf_members"].format(member))
            else:
                pipe.hget(keys.job(member), Field.STATUS)
        for _, job_id in roles:
            pipe.hget(keys.job(job_id), Field.STATUS)
        replies = pipe.execute()
    at, states, chains = 0, list[str](), list[tuple[int, bool, list[str]]]()
    for _member, sub in pending:
        if sub:
            counted, steps = replies[at], replies[at + 1]
            at += 2
            chains.append((len(states), any(counted), [text(step) for step in steps]))
            states.append("queued")
        else:
            states.append(member_state(text(replies[at]) if replies[at] else None))
            at += 1
    statuses = [text(status) if status else None for status in replies[at:]]
    if chains:
        steps = [step for _, _, found in chains for step in found]
        with connection.pipeline(transaction=False) as pipe:
            for step in steps:
                pipe.hget(keys.job(step), Field.STATUS)
            found_statuses = iter(pipe.execute())
        for index, counted, found in chains:
            started = [member_state(text(s) if s else None) for s in (next(found_statuses) for _ in found)]
            states[index] = "running" if counted or "running" in started else "queued"
    return states, statuses
