"""The Redis side of the schedules: their state (last tick, last job, counts) and `tick.lua`,
which fires due ticks exactly once however many workers call it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from app.infrastructure.queue import keys, lua
from app.infrastructure.queue.job_spec import JobSpec, JobSpecBuilder, spec_record
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.record import text
from app.infrastructure.queue.schedules import Plan, Schedule
from app.infrastructure.queue.schema import Field, ScheduleField, packer
from app.infrastructure.redis.connection import describe, server_time, translating

_tick_args = packer("tick")


@dataclass(frozen=True)
class ScheduleState:
    """What Redis knows of one schedule."""

    last_tick: int | None
    last_tick_raw: str  # as stored: the tick script compares it to what the caller read
    last_job: str | None
    last_job_status: str | None
    enqueued: int
    skipped: int
    missed: int


@dataclass(frozen=True)
class Fired:
    """What one call of the tick script did: nothing (another worker moved first), or this."""

    moved: bool
    enqueued: int = 0
    skipped: int = 0


class ScheduleStore:
    """Reads schedules' state and fires their ticks. Raises only our errors."""

    def __init__(self, connection: redis.Redis, builder: JobSpecBuilder) -> None:
        self.connection = connection
        self.where = describe(connection)
        self.builder = builder
        self._tick = connection.register_script(lua.source("tick"))

    def clock(self) -> float:
        """Redis's time: ticks are due by it, never by this machine's clock."""
        with translating(self.where):
            return server_time(self.connection)

    def states(self, schedules: Sequence[Schedule]) -> dict[str, ScheduleState]:
        with translating(self.where), self.connection.pipeline(transaction=False) as pipe:
            for schedule in schedules:
                pipe.hgetall(keys.key("schedule", schedule.name))
            hashes = pipe.execute()
            jobs = [fields.get(ScheduleField.LAST_JOB.encode()) for fields in hashes]
            for job_id in jobs:
                pipe.hget(keys.job(text(job_id)), Field.STATUS) if job_id else pipe.echo("")
            statuses = pipe.execute()
        return {
            schedule.name: _state(fields, status)
            for schedule, fields, status in zip(schedules, hashes, statuses, strict=True)
        }

    def fire(self, schedule: Schedule, seen: str, plan: Plan) -> Fired:
        """Run `plan` if the schedule's last tick is still `seen` (as stored)."""
        records: list[object] = []
        for tick in plan.fire:
            records += [tick, *spec_record(self._spec(schedule, tick))]
        _, args = _tick_args(
            name=schedule.name,
            overlap=schedule.overlap,
            last_seen=seen,
            first="" if plan.first is None else str(plan.first),
            through="" if plan.through is None else str(plan.through),
            missed=plan.missed,
            count=len(plan.fire),
            ticks=records,
        )
        with translating(self.where):
            reply = self._tick(args=args)
        if reply[0] == b"moved":
            return Fired(moved=True)
        return Fired(moved=False, enqueued=int(reply[1]), skipped=int(reply[2]))

    def _spec(self, schedule: Schedule, tick: int) -> JobSpec:
        request = JobRequest(schedule.job_name, schedule.params, priority=schedule.priority)  # type: ignore[arg-type]
        spec = self.builder.build(request, time.time())
        return spec._replace(job_id=schedule.job_id(tick), explicit_id=True)


def _state(fields: dict[bytes, bytes], status: bytes | None) -> ScheduleState:
    def get(name: str) -> str:
        return text(fields.get(name.encode(), b""))

    raw = get(ScheduleField.LAST_TICK)
    return ScheduleState(
        last_tick=int(raw) if raw.lstrip("-").isdigit() else None,
        last_tick_raw=raw,
        last_job=get(ScheduleField.LAST_JOB) or None,
        last_job_status=text(status) if status else None,
        enqueued=int(get(ScheduleField.ENQUEUED) or 0),
        skipped=int(get(ScheduleField.SKIPPED) or 0),
        missed=int(get(ScheduleField.MISSED) or 0),
    )
