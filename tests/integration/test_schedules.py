"""Schedules fire each tick once however many workers run (and when one is killed), catch up
after a gap, skip overlapping runs, and go by Redis's clock, not a worker's."""

from __future__ import annotations

import itertools
import signal
import time
from datetime import timedelta

import pytest

from app.bootstrap import bootstrap
from app.infrastructure.queue.schedules import Schedule
from app.worker.scheduler import Scheduler
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def tick_jobs(r, name: str) -> list[int]:
    return sorted(int(key.rsplit(b":", 1)[1]) for key in r.scan_iter(f"rq:job:schedule:{name}:*"))


def test_three_workers_fire_each_tick_once_even_when_one_is_killed(settings, r, tmp_path):
    ledger = tmp_path / "ledger"
    env = {"QUEUE_SCHEDULES_MODULE": "tests.support.schedule_sets.every_second"}
    env["TASKQ_TEST_SCHEDULE_LEDGER"] = str(ledger)
    workers = [WorkerProcess(settings, "--mode", "inline", env=env).start() for _ in range(3)]
    try:
        wait_until(lambda: len(tick_jobs(r, "tick")) >= 5, timeout=20, what="five ticks")
        workers[0].signal(signal.SIGKILL)  # one scheduler gone mid-way: the others go on
        wait_until(lambda: len(tick_jobs(r, "tick")) >= 12, timeout=30, what="twelve ticks")
    finally:
        for worker in workers:
            worker.stop()
    ticks = tick_jobs(r, "tick")
    assert ticks == sorted(set(ticks))  # one job per tick (ids are per tick: a duplicate is a rerun)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert sum(gap - 1 for gap in gaps) <= 1, gaps  # at most one tick missed
    runs = ledger.read_text().split() if ledger.exists() else []
    finished = [t for t in ticks if r.hget(f"rq:job:schedule:tick:{t}", "status") == b"finished"]
    # One run per finished tick; plus, at most, the one the killed worker ran without recording.
    assert len(finished) <= len(runs) <= len(finished) + 1


def scheduler_for(settings, r, *schedules: Schedule) -> Scheduler:
    services = bootstrap(settings, connection=r)
    return Scheduler(list(schedules), services.schedule_store(), [])


def test_after_a_gap_ticks_within_catchup_fire_once_each_oldest_first(settings, r):
    schedule = Schedule(
        "gap", "add", {"a": 1, "b": 1}, every=1, catchup=timedelta(seconds=4), overlap="allow"
    )
    scheduler = scheduler_for(settings, r, schedule)
    scheduler.run_once()  # first sighting: starts at the latest tick, unfired
    start = int(r.hget("taskq:schedule:gap", "last_tick"))
    wait_until(lambda: scheduler.store.clock() >= start + 7, timeout=15, what="a seven-second gap")
    scheduler.run_once()
    fired = tick_jobs(r, "gap")
    missed = int(r.hget("taskq:schedule:gap", "missed"))
    assert fired == list(range(fired[0], fired[0] + len(fired))) and len(fired) in (4, 5), fired
    assert fired[-1] - start == len(fired) + missed and missed >= 3  # every tick fired or counted
    enqueued = [r.hget(f"rq:job:schedule:gap:{t}", "enqueued_at") for t in fired]
    assert enqueued == sorted(enqueued)  # oldest first
    scheduler.run_once()
    assert tick_jobs(r, "gap") == fired  # fired once: a second round adds nothing


def test_overlap_skip_counts_the_ticks_that_come_while_the_run_is_pending(settings, r):
    schedule = Schedule("slow", "sleep", {"seconds": 30}, every=1)
    scheduler = scheduler_for(settings, r, schedule)
    scheduler.run_once()
    deadline = time.monotonic() + 20
    while len(tick_jobs(r, "slow")) < 1 or int(r.hget("taskq:schedule:slow", "skipped") or 0) < 2:
        assert time.monotonic() < deadline, "no skips counted"
        time.sleep(scheduler.run_once())
    assert len(tick_jobs(r, "slow")) == 1  # nothing runs it: every later tick overlaps the queued one


def test_a_worker_an_hour_ahead_fires_nothing_early(settings, r):
    env = {"QUEUE_SCHEDULES_MODULE": "tests.support.schedule_sets.hourly", "TASKQ_TEST_CLOCK_SKEW": "3600"}
    with WorkerProcess(settings, env=env):
        wait_until(lambda: r.hexists("taskq:schedule:hourly", "last_tick"), what="the schedule seen")
        time.sleep(2.0)  # a window for a wrong fire: its tick is an hour away by Redis's clock
    assert tick_jobs(r, "hourly") == []


def test_no_scheduler_means_no_ticks(settings, r):
    env = {"QUEUE_SCHEDULES_MODULE": "tests.support.schedule_sets.every_second"}
    with WorkerProcess(settings, "--no-scheduler", env=env):
        time.sleep(2.0)  # two ticks' worth
    assert not r.exists("taskq:schedule:tick")
