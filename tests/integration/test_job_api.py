"""Issue 3: every enqueue option against a real Redis and real worker processes."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from app.infrastructure.queue.errors import JobNotFoundError, WaitTimeoutError
from app.infrastructure.queue.port import JobStatus, RetryPolicy
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def starts(path):
    return [float(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("how", ["delay", "at"])
def test_a_delayed_job_starts_on_time(settings, r, tmp_path, how):
    queue = RQQueue(r, settings)
    marker = tmp_path / "start"
    with WorkerProcess(settings):
        enqueued = time.time()
        when = (
            {"delay": timedelta(seconds=2)}
            if how == "delay"
            else {"at": datetime.fromtimestamp(enqueued + 2, tz=timezone.utc)}
        )
        job_id = queue.enqueue("record_start", {"path": str(marker)}, **when)
        assert queue.get(job_id).status is JobStatus.SCHEDULED
        queue.wait(job_id, timeout=10)
    (started,) = starts(marker)
    assert started - enqueued >= 2.0, started - enqueued  # never early; how late: `make bench`


def test_retries_with_backoff_then_success(settings, r, tmp_path):
    queue = RQQueue(r, settings)
    runs = tmp_path / "runs"
    policy = RetryPolicy(max_retries=3, base=1.0, factor=2.0, cap=10, jitter=0.1)
    job_id = queue.enqueue("fail_then_succeed", {"path": str(runs), "failures": 2}, retry=policy)
    with WorkerProcess(settings):
        view = queue.wait(job_id, timeout=20)
    assert (view.status, view.attempts, view.max_attempts, view.result) == (JobStatus.FINISHED, 3, 4, 3)
    first, second, third = starts(runs)
    # Each retry waits its backoff (1 s, then 2 s, each -10 % jitter at most): never sooner.
    assert second - first >= 0.9, second - first
    assert third - second >= 1.8, third - second


def test_a_job_that_keeps_failing_ends_failed_after_its_retries(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue(
        "fail_always", {"message": "again"}, retry=RetryPolicy(max_retries=2, base=0.1, jitter=0)
    )
    with WorkerProcess(settings):
        view = queue.wait(job_id, timeout=20)
    assert (view.status, view.attempts, view.error) == (JobStatus.FAILED, 3, "ValueError: again")


def test_every_high_job_starts_before_any_low_job(settings, r, tmp_path):
    queue = RQQueue(r, settings)
    ledger = tmp_path / "order"
    ids = []
    for priority in ("low", "default", "high"):
        ids += [
            queue.enqueue("ledger", {"path": str(ledger), "token": priority}, priority=priority)
            for _ in range(15)
        ]
    with WorkerProcess(settings, "--burst", "--mode", "inline") as worker:
        assert worker.wait() == 0
    order = ledger.read_text().split()
    assert order == ["high"] * 15 + ["default"] * 15 + ["low"] * 15


@pytest.mark.parametrize("path", ["queued", "scheduled", "deferred"])
def test_fifty_concurrent_enqueues_with_one_key_make_one_job_that_runs_once(settings, r, tmp_path, path):
    queue = RQQueue(r, settings)
    ledger = tmp_path / "runs"
    options = {}
    if path == "scheduled":
        options["delay"] = 0.5
    if path == "deferred":
        options["depends_on"] = queue.enqueue("sleep", {"seconds": 0.3})
    barrier = threading.Barrier(10)
    results: list[str] = []

    def producer(thread: int) -> None:
        barrier.wait()
        for attempt in range(5):
            results.append(
                queue.enqueue(
                    "ledger",
                    {"path": str(ledger), "token": f"{thread}-{attempt}"},
                    job_id="one-key",
                    **options,
                )
            )

    threads = [threading.Thread(target=producer, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["one-key"] * 50
    with WorkerProcess(settings):
        queue.wait("one-key", timeout=15)
        # Finished within its result TTL: the key still names that job, nothing new is queued.
        late = queue.enqueue("ledger", {"path": str(ledger), "token": "late"}, job_id="one-key")
        assert late == "one-key"
        assert r.llen("rq:queue:default") == 0
        assert queue.get("one-key").status is JobStatus.FINISHED
    assert len(ledger.read_text().split()) == 1
    assert r.zcard("rq:finished:default") >= 1


@pytest.mark.parametrize("mode", ["fork", "pool", "inline"])
def test_a_job_over_its_timeout_is_killed_and_the_worker_goes_on(settings, r, mode):
    queue = RQQueue(r, settings)
    slow = queue.enqueue("sleep", {"seconds": 30}, timeout=1)
    quick = queue.enqueue("add", {"a": 1, "b": 2})
    with WorkerProcess(settings, "--mode", mode):
        view = queue.wait(slow, timeout=15)
        assert queue.wait(quick, timeout=10).result == 3
    assert view.status is JobStatus.FAILED
    assert "JobTimeoutException" in view.error or "timeout" in view.error
    assert (view.ended_at - view.started_at).total_seconds() < 30  # cut short: it asked for 30 s


def test_result_ttl_and_failure_ttl_expire_the_job(settings, r):
    queue = RQQueue(r, settings)
    done = queue.enqueue("add", {"a": 1, "b": 1}, result_ttl=1)
    failed = queue.enqueue("fail_always", {}, failure_ttl=1)
    kept = queue.enqueue("add", {"a": 1, "b": 1})
    with WorkerProcess(settings):
        queue.wait(done, timeout=10)
        queue.wait(failed, timeout=10)
        queue.wait(kept, timeout=10)
    wait_until(lambda: not r.exists(f"rq:job:{done}") and not r.exists(f"rq:job:{failed}"), timeout=5)
    for job_id in (done, failed):
        with pytest.raises(JobNotFoundError):
            queue.get(job_id)
    assert queue.get(kept).result == 2
    assert 3000 < r.ttl(f"rq:job:{kept}") <= 3600


def test_ttl_drops_a_job_that_waited_too_long(settings, r, tmp_path):
    queue = RQQueue(r, settings)
    marker = tmp_path / "ran"
    job_id = queue.enqueue("touch", {"path": str(marker)}, ttl=1)
    wait_until(lambda: not r.exists(f"rq:job:{job_id}"), timeout=5)
    with WorkerProcess(settings, "--burst") as worker:
        assert worker.wait() == 0
    assert not marker.exists()
    with pytest.raises(JobNotFoundError):
        queue.get(job_id)


def test_a_dependent_starts_after_its_parent_ends(settings, r, tmp_path):
    queue = RQQueue(r, settings)
    parent = queue.enqueue("sleep", {"seconds": 0.5})
    child = queue.enqueue("record_start", {"path": str(tmp_path / "child")}, depends_on=parent)
    with WorkerProcess(settings, "--processes", "2"):
        queue.wait(child, timeout=15)
    (child_started,) = starts(tmp_path / "child")
    assert child_started >= queue.get(parent).ended_at.timestamp()


def test_progress_is_visible_while_the_job_runs_and_keeps_meta(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("progress", {"steps": 10, "pause": 0.15}, meta={"owner": "api"})
    seen = set()

    def note_progress() -> bool:
        view = queue.get(job_id)
        if view.progress:
            seen.add(view.progress.done)
        return view.is_final

    with WorkerProcess(settings):
        wait_until(note_progress, timeout=20, what="the job to end")
    view = queue.get(job_id)
    assert view.meta["owner"] == "api" and view.progress.done == 10
    assert len([done for done in seen if 0 < done < 10]) >= 3


def test_cancel_a_scheduled_job_and_its_dependents(settings, r, tmp_path):
    queue = RQQueue(r, settings)
    marker = tmp_path / "ran"
    scheduled = queue.enqueue("touch", {"path": str(marker)}, delay=0.5)
    parent = queue.enqueue("add", {"a": 1, "b": 1}, delay=0.5)
    child = queue.enqueue("touch", {"path": str(marker)}, depends_on=parent)
    queue.cancel(scheduled)
    queue.cancel(parent)
    # Due after the canceled ones: once it has run, the scheduler has passed their time.
    witness = queue.enqueue("add", {"a": 2, "b": 2}, delay=0.6)
    with WorkerProcess(settings):
        assert queue.wait(witness, timeout=10).result == 4
    assert not marker.exists()
    assert [queue.get(i).status for i in (scheduled, parent, child)] == [JobStatus.CANCELED] * 3
    assert r.zscore("rq:canceled:default", scheduled) is not None


@pytest.mark.parametrize("mode", ["fork", "pool", "inline"])
def test_stop_a_running_job_ends_it_stopped_without_retry(settings, r, mode):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 30}, retry=3)
    after = queue.enqueue("add", {"a": 1, "b": 1})
    with WorkerProcess(settings, "--mode", mode):
        wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, timeout=10)
        queue.stop(job_id)
        view = queue.wait(job_id, timeout=10)
        assert queue.wait(after, timeout=10).result == 2
    assert (view.status, view.attempts) == (JobStatus.STOPPED, 1)
    assert r.zscore("rq:failed:default", job_id) is not None


def test_wait_gives_up_with_a_clear_error(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("add", {"a": 1, "b": 1})
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as caught:
        queue.wait(job_id, timeout=0.5)
    assert time.monotonic() - started >= 0.5  # it waited its whole timeout first
    assert caught.value.status == "queued" and job_id in str(caught.value)
