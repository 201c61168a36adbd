"""`Schedule`: a job to enqueue at every tick of a cron rule or an interval (producer side: it
imports no job code). Workers fire the ticks (app/worker/scheduler.py); each is enqueued once,
however many workers run, as the job `schedule:<name>:<tick in epoch seconds>`.

Cron rules are read by cronsim: small, no dependencies of its own, maintained, with daylight
saving time handled the way Debian's cron does it (a time that does not exist runs once, at the
next one that does; a time that happens twice runs once). No hand-written cron parser here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import timezone as _tz
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from app.infrastructure.queue.errors import QueueError

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
PRIORITIES = ("high", "default", "low")
#: How many ticks are counted at most (a cron rule far in the past would take long to walk).
COUNT_LIMIT = 100_000


class ScheduleError(QueueError):
    """Raised when a schedule is declared with a value it cannot use; the message names it."""

    def __init__(self, name: object, reason: str) -> None:
        self.name = name
        super().__init__(f"schedule {name!r}: {reason}")


@dataclass(frozen=True)
class Schedule:
    """Enqueue `job_name(**params)` at every tick: `cron` (5 fields, in `timezone`) or `every`.

    `overlap="skip"` skips (and counts) a tick that comes while the previous run is still queued
    or running; `"allow"` enqueues it anyway. After downtime, the ticks missed within `catchup`
    are enqueued once each, oldest first, and older ones are counted as missed; with no
    `catchup`, only the latest missed tick runs.
    """

    name: str
    job_name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    cron: str | None = None
    every: timedelta | float | None = None
    timezone: str = "UTC"
    overlap: str = "skip"
    catchup: timedelta | None = None
    priority: str = "default"

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ScheduleError(name, "names must match [a-z0-9][a-z0-9_-]{0,63}")
        if not isinstance(self.job_name, str) or not self.job_name:
            raise ScheduleError(name, "job_name must be a registered job's name")
        if not isinstance(self.params, Mapping) or not all(isinstance(k, str) for k in self.params):
            raise ScheduleError(name, "params must be a mapping of str keys")
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if (self.cron is None) == (self.every is None):
            raise ScheduleError(name, "give exactly one of cron or every")
        _check_rule(self)
        if self.overlap not in ("skip", "allow"):
            raise ScheduleError(name, f"overlap must be 'skip' or 'allow', not {self.overlap!r}")
        if self.catchup is not None and (
            not isinstance(self.catchup, timedelta) or self.catchup.total_seconds() < 0
        ):
            raise ScheduleError(name, "catchup must be a timedelta of zero or more")
        if self.priority not in PRIORITIES:
            raise ScheduleError(name, f"priority must be one of {', '.join(PRIORITIES)}")

    @property
    def period(self) -> int | None:
        """`every`, in whole seconds (None for a cron rule)."""
        if self.every is None:
            return None
        return int(self.every.total_seconds() if isinstance(self.every, timedelta) else self.every)

    @property
    def rule(self) -> str:
        return f"cron {self.cron} ({self.timezone})" if self.cron else f"every {self.period} s"

    def latest(self, until: float) -> int | None:
        """The last tick at or before `until` (epoch seconds)."""
        if self.period:
            return math.floor(until / self.period) * self.period
        start = datetime.fromtimestamp(math.floor(until) + 1, tz=self._zone())
        return int(next(CronSim(str(self.cron), start, reverse=True)).timestamp())

    def next_after(self, moment: float) -> int:
        """The first tick after `moment`."""
        if self.period:
            return (math.floor(moment / self.period) + 1) * self.period
        start = datetime.fromtimestamp(math.floor(moment), tz=self._zone())
        return int(next(CronSim(str(self.cron), start)).timestamp())

    def ticks(self, after: float, until: float) -> Iterator[int]:
        """The ticks in (`after`, `until`], oldest first."""
        tick = self.next_after(after)
        while tick <= until:
            yield tick
            tick = self.next_after(tick)

    def count(self, after: float, until: float) -> int:
        """How many ticks are in (`after`, `until`] (at most COUNT_LIMIT for a cron rule)."""
        if self.period:
            return max(0, math.floor(until / self.period) - math.floor(after / self.period))
        total = 0
        for _ in self.ticks(after, until):
            total += 1
            if total >= COUNT_LIMIT:
                break
        return total

    def job_id(self, tick: int) -> str:
        return f"schedule:{self.name}:{tick}"

    def _zone(self) -> _tz | ZoneInfo:
        return _tz.utc if self.timezone == "UTC" else ZoneInfo(self.timezone)


def _check_rule(schedule: Schedule) -> None:
    name = schedule.name
    try:
        zone = schedule._zone()
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(name, f"timezone {schedule.timezone!r} is not known") from None
    if schedule.cron is not None:
        if not isinstance(schedule.cron, str) or len(schedule.cron.split()) != 5:
            raise ScheduleError(
                name, f"cron {schedule.cron!r} must have 5 fields (minute hour day month weekday)"
            )
        try:
            next(CronSim(schedule.cron, datetime.now(zone)))
        except (CronSimError, StopIteration) as exc:
            raise ScheduleError(name, f"cron {schedule.cron!r}: {exc}") from None
        return
    every = schedule.every
    seconds = every.total_seconds() if isinstance(every, timedelta) else every
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ScheduleError(name, "every must be a timedelta or a number of seconds")
    if seconds < 1 or seconds != int(seconds):
        raise ScheduleError(name, f"every must be a whole number of seconds, 1 or more, not {seconds!r}")


#: The most ticks one call fires (a long catch-up window goes on at the next round).
MAX_FIRE = 1000


@dataclass(frozen=True)
class Plan:
    """What to do for one schedule now: start it (`first`), or fire ticks up to `through`."""

    first: int | None = None
    fire: tuple[int, ...] = ()
    through: int | None = None
    missed: int = 0

    @property
    def empty(self) -> bool:
        return self.first is None and self.through is None


def plan(schedule: Schedule, last_tick: int | None, now: float) -> Plan:
    """The ticks due at `now` (Redis's clock) after `last_tick` (None: never seen before).

    A schedule seen for the first time starts at its latest tick, unfired: a deploy does not
    fire everything at once. Ticks older than the catch-up window are only counted (missed).
    """
    latest = schedule.latest(now)
    if last_tick is None:
        return Plan(first=latest if latest is not None else math.floor(now))
    if latest is None or latest <= last_tick:
        return Plan()
    start = latest if schedule.catchup is None else now - schedule.catchup.total_seconds()
    edge = max(last_tick, start - 1e-6)  # ticks after this fire; those up to it are missed
    missed = schedule.count(last_tick, edge) if edge > last_tick else 0
    fire = []
    for tick in schedule.ticks(edge, now):
        fire.append(tick)
        if len(fire) >= MAX_FIRE:
            break
    through = fire[-1] if len(fire) >= MAX_FIRE else latest
    return Plan(fire=tuple(fire), through=through, missed=missed)
