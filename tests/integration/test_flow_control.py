"""Pause and resume per queue; concurrency and rate limits across workers, per job and per key;
a job that says RateLimited comes back later, no attempt used. Real workers on the test Redis."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from app.infrastructure.queue.port import JobRequest, JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def spans(path: Path) -> list[tuple[float, float]]:
    """(start, end) of each run in a `span` ledger, matched by pid in order."""
    open_by_pid: dict[str, list[float]] = {}
    done = []
    for line in path.read_text().splitlines():
        kind, moment, pid = line.split()
        if kind == "start":
            open_by_pid.setdefault(pid, []).append(float(moment))
        else:
            done.append((open_by_pid[pid].pop(0), float(moment)))
    return done


def most_at_once(runs: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in runs] + [(end, -1) for _, end in runs])
    return max(itertools.accumulate(step for _, step in events))


@contextmanager
def workers(settings, count: int) -> Iterator[list[WorkerProcess]]:
    """`count` inline worker processes, stopped by pid at the end, whatever happens."""
    started: list[WorkerProcess] = []
    try:
        for _ in range(count):
            started.append(WorkerProcess(settings, "--mode", "inline").start())
        yield started
    finally:
        for worker in started:
            worker.stop()


def test_pause_stops_claims_on_one_queue_only_and_survives_a_restart(settings, r):
    queue = RQQueue(r, settings)
    queue.pause("default")
    held = queue.enqueue("add", {"a": 1, "b": 1})
    other = queue.enqueue("add", {"a": 2, "b": 2}, priority="high")
    with WorkerProcess(settings):
        assert queue.wait(other, timeout=10).result == 4
    with WorkerProcess(settings):  # started after the pause: it too leaves the queue alone
        assert queue.wait(queue.enqueue("add", {"a": 3, "b": 3}, priority="low"), timeout=10).result == 6
        assert queue.get(held).status is JobStatus.QUEUED
        queue.resume("default")
        assert queue.wait(held, timeout=10).result == 2


def test_concurrency_two_is_never_exceeded_across_three_workers(settings, r, tmp_path):
    limited = replace(settings, limits="span=concurrency:2")
    queue = RQQueue(r, limited)
    ledger = tmp_path / "spans"
    ids = [queue.enqueue("span", {"path": str(ledger), "seconds": 0.2}) for _ in range(18)]
    with workers(limited, 3):
        for job_id in ids:
            assert queue.wait(job_id, timeout=60).status is JobStatus.FINISHED
    runs = spans(ledger)
    assert len(runs) == 18 and most_at_once(runs) == 2  # the limit, and reached: they ran in parallel
    assert [queue.get(job_id).attempts for job_id in ids] == [1] * 18  # waiting used no attempt
    assert r.zcard("taskq:slots:tests.support.jobs.span") == 0  # every slot given back


def test_a_lone_keys_job_starts_among_the_first_while_another_key_has_a_thousand_waiting(
    settings, r, tmp_path
):
    limited = replace(settings, limits="span=concurrency_per_key:1")
    queue = RQQueue(r, limited)
    ledger = tmp_path / "spans"
    queue.enqueue_many(
        [JobRequest("span", {"path": str(ledger), "seconds": 0.0}, limit_key="big") for _ in range(1000)]
    )
    lone = queue.enqueue("span", {"path": str(ledger), "seconds": 0.0}, limit_key="small")
    # Keyed jobs wait in their key's group, one enqueue or a batch alike; the keys take turns.
    assert r.llen("rq:queue:default") == 0 and r.lrange("taskq:ring:default", 0, -1) == [b"big", b"small"]
    assert (r.llen("taskq:group:default:big"), r.llen("taskq:group:default:small")) == (1000, 1)
    with WorkerProcess(limited, "--mode", "inline"):
        view = queue.wait(lone, timeout=30)
    started = sorted(
        queue.get(job_id).started_at for job_id in [lone, *_ids_of(r, "big")] if queue.get(job_id).started_at
    )
    assert started.index(view.started_at) <= 2  # among the first claims, not after the thousand


def _ids_of(r, key: str) -> list[str]:
    return [
        member.decode().removeprefix("rq:job:")
        for member in r.scan_iter("rq:job:*")
        if r.hget(member, "taskq_limit_key") == key.encode()
    ][:50]


def test_at_most_n_start_in_any_window(settings, r, tmp_path):
    limited = replace(settings, limits="span=rate:3/1s")
    queue = RQQueue(r, limited)
    ledger = tmp_path / "spans"
    ids = [queue.enqueue("span", {"path": str(ledger), "seconds": 0.0}) for _ in range(9)]
    with workers(limited, 2):
        for job_id in ids:
            queue.wait(job_id, timeout=30)
    starts = sorted(queue.get(job_id).started_at.timestamp() for job_id in ids)  # by Redis's clock
    assert max(sum(1 for s in starts if first <= s < first + 1.0) for first in starts) <= 3


def test_a_slot_held_by_a_killed_worker_is_freed_by_the_reaper(settings, r, tmp_path):
    limited = replace(settings, limits="sleep=concurrency:1")
    queue = RQQueue(r, limited)
    first = queue.enqueue("sleep", {"seconds": 30}, retry=0)  # reaped for good: the slot must follow
    second = queue.enqueue("sleep", {"seconds": 0.1})
    with WorkerProcess(limited, "--mode", "inline") as doomed:
        wait_until(lambda: queue.get(first).status is JobStatus.STARTED, what="the first job")
        doomed.signal(signal.SIGKILL)
        doomed.wait()
    assert r.zcard("taskq:slots:tests.support.jobs.sleep") == 1  # held by the dead worker's job
    with WorkerProcess(limited, "--mode", "inline"):  # its reaper takes the job back, and the slot
        assert queue.wait(second, timeout=30).status is JobStatus.FINISHED
    assert queue.get(first).status is JobStatus.FAILED
    assert r.zcard("taskq:slots:tests.support.jobs.sleep") == 0


def test_rate_limited_comes_back_later_without_using_an_attempt(settings, r, tmp_path):
    queue = RQQueue(r, settings)
    runs = tmp_path / "runs"
    job_id = queue.enqueue("rate_limited_once", {"path": str(runs), "retry_after": 0.5}, retry=0)
    with WorkerProcess(settings):
        view = queue.wait(job_id, timeout=15)
    first, second = (float(line) for line in runs.read_text().splitlines())
    assert (view.status, view.result, view.attempts) == (JobStatus.FINISHED, 2, 1)  # retry=0, still ran again
    assert second - first >= 0.5


def test_a_kill_storm_with_limits_in_force_loses_nothing_and_leaks_no_slot():
    """The chaos row at a small scale: 3 workers in fork mode, SIGKILLed every ~2 s."""
    from chaos.flow import kill_storm_with_limits

    row = kill_storm_with_limits(0.2)
    assert row.kills >= 1 and row.lost == 0 and row.passed, (row.failures, row.note)
