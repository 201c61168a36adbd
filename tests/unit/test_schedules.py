"""Schedules: declared with clear errors, ticks computed from the rule, and the plan of what is
due (first sighting, catch-up window, missed ticks) — pure functions, no Redis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.infrastructure.queue.schedules import Plan, Schedule, ScheduleError, plan

T0 = 1_800_000_000  # a whole hour: 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"name": "Bad Name"}, "names must match"),
        ({"cron": None, "every": None}, "exactly one of cron or every"),
        ({"every": 60}, "exactly one of cron or every"),
        ({"cron": "* * *"}, "5 fields"),
        ({"cron": "61 * * * *"}, r"cron '61 \* \* \* \*': Bad minute"),
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus'"),
        ({"overlap": "queue"}, "overlap must be"),
        ({"catchup": 5}, "catchup must be a timedelta"),
        ({"priority": "urgent"}, "priority must be one of"),
        ({"params": ["x"]}, "params must be a mapping"),
    ],
)
def test_a_bad_schedule_is_a_clear_error(changes, named):
    fields = {"name": "report", "job_name": "ingest_doc", "cron": "*/5 * * * *", **changes}
    with pytest.raises(ScheduleError, match=named):
        Schedule(**fields)


@pytest.mark.parametrize("every", [0.5, 1.5, float("inf"), True, "60"])
def test_every_is_a_whole_number_of_seconds(every):
    with pytest.raises(ScheduleError, match="every must be"):
        Schedule("x", "ingest_doc", every=every)


def test_interval_ticks_are_aligned_to_the_epoch():
    s = Schedule("x", "ingest_doc", every=timedelta(minutes=5))
    assert s.latest(T0 + 299) == T0 and s.latest(T0 + 300) == T0 + 300
    assert s.next_after(T0) == T0 + 300 and list(s.ticks(T0, T0 + 900)) == [T0 + 300, T0 + 600, T0 + 900]
    assert s.count(T0, T0 + 900) == 3 and s.job_id(T0) == f"schedule:x:{T0}"


def test_cron_ticks_follow_the_rule_in_its_timezone():
    s = Schedule("nightly", "ingest_doc", cron="0 3 * * *", timezone="Europe/Madrid")
    madrid_3am = datetime(2027, 1, 15, 2, 0, tzinfo=timezone.utc).timestamp()  # CET = UTC+1
    assert s.next_after(madrid_3am - 1) == madrid_3am and s.latest(madrid_3am + 1) == madrid_3am
    assert s.next_after(madrid_3am) == madrid_3am + 86400


def test_a_schedule_seen_first_starts_at_its_latest_tick_unfired():
    s = Schedule("x", "ingest_doc", every=10)
    assert plan(s, None, T0 + 5) == Plan(first=T0)


def test_nothing_is_due_before_the_next_tick():
    s = Schedule("x", "ingest_doc", every=10)
    assert plan(s, T0, T0 + 9.9).empty


def test_without_catchup_only_the_latest_missed_tick_fires():
    s = Schedule("x", "ingest_doc", every=10)
    assert plan(s, T0, T0 + 45) == Plan(fire=(T0 + 40,), through=T0 + 40, missed=3)


def test_ticks_within_the_catchup_window_fire_oldest_first_older_ones_are_missed():
    s = Schedule("x", "ingest_doc", every=10, catchup=timedelta(seconds=25))
    assert plan(s, T0, T0 + 45) == Plan(fire=(T0 + 20, T0 + 30, T0 + 40), through=T0 + 40, missed=1)
    wide = Schedule("x", "ingest_doc", every=10, catchup=timedelta(hours=1))
    assert plan(wide, T0, T0 + 45).fire == (T0 + 10, T0 + 20, T0 + 30, T0 + 40)
