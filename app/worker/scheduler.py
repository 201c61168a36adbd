"""The scheduler every worker runs (unless `--no-scheduler`): it fires the schedules' due ticks.

All workers compute the same ticks from the same rules and Redis's clock; the tick script
enqueues each once (app/infrastructure/queue/lua/tick.lua), so correctness needs no lease and no
leader: two workers, or twenty, or one that is an hour off, fire each tick once.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.schedule_store import ScheduleStore
from app.infrastructure.queue.schedules import Schedule, ScheduleError, plan

if TYPE_CHECKING:
    from app.worker.events import WorkerEvents

log = logging.getLogger("taskq.scheduler")

#: How often the scheduler looks, at most (it looks sooner when a tick is due sooner).
POLL = 1.0


def load(module_name: str, registry: JobRegistry) -> list[Schedule]:
    """The `SCHEDULES` of `module_name` (`QUEUE_SCHEDULES_MODULE`), each job checked as registered.

    Raises:
        ScheduleError: the module does not load, has no list of schedules, names a job that is
            not registered, or two schedules share a name.
    """
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ScheduleError(module_name, f"the schedules module does not import: {exc!r}") from exc
    schedules = getattr(module, "SCHEDULES", None)
    if not isinstance(schedules, list | tuple) or not all(isinstance(s, Schedule) for s in schedules):
        raise ScheduleError(module_name, "SCHEDULES must be a list of Schedule")
    names = [schedule.name for schedule in schedules]
    if len(set(names)) != len(names):
        raise ScheduleError(module_name, "two schedules have the same name")
    for schedule in schedules:
        if not registry.is_registered(schedule.job_name) and schedule.job_name not in dict(registry):
            raise ScheduleError(schedule.name, f"job {schedule.job_name!r} is not registered (`taskq jobs`)")
    return list(schedules)


class Scheduler:
    """Fires due ticks on a thread of the worker, until stopped."""

    def __init__(
        self, schedules: Sequence[Schedule], store: ScheduleStore, events: Sequence[WorkerEvents]
    ) -> None:
        self.schedules = list(schedules)
        self.store = store
        self.events = events
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskq-scheduler", daemon=True)

    def start(self) -> None:
        if self.schedules:
            self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        wait = 0.0
        while not self._done.wait(wait):
            try:
                wait = self.run_once()
            except QueueError as exc:
                log.warning("schedules not fired this round: %s", exc)
                wait = POLL

    def run_once(self) -> float:
        """Fire what is due now; how long to wait before looking again."""
        now = self.store.clock()
        states = self.store.states(self.schedules)
        for schedule in self.schedules:
            state = states[schedule.name]
            due = plan(schedule, state.last_tick, now)
            if due.empty:
                continue
            fired = self.store.fire(schedule, state.last_tick_raw, due)
            if not fired.moved and (fired.enqueued or fired.skipped or due.missed):
                self._report(schedule, fired.enqueued, fired.skipped, due.missed)
        soonest = min(schedule.next_after(now) for schedule in self.schedules)
        return max(0.05, min(POLL, soonest - now))

    def _report(self, schedule: Schedule, enqueued: int, skipped: int, missed: int) -> None:
        fields = {"schedule": schedule.name, "enqueued": enqueued, "skipped": skipped, "missed": missed}
        if missed:
            log.warning("schedule ticks missed", extra={"event": "schedule_missed", **fields})
        else:
            log.info("schedule fired", extra={"event": "schedule_fired", **fields})
        for observer in self.events:
            try:
                observer.schedule_fired(schedule.name, enqueued, skipped, missed)
            except Exception:
                log.exception("worker event observer %r failed on schedule_fired", observer)
