"""`python -m app.worker --concurrency N`: N jobs at once in one process, each with its own claim,
heartbeat, timeout, stop; a job that blocks the loop starves neither heartbeats nor the timeout;
a SIGKILL of the process loses none of its N jobs."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

from app.bootstrap import bootstrap
from app.exits import Exit
from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.reaper import Reaper
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.servers import free_port
from tests.e2e.test_metrics import scrape
from tests.support.processes import WorkerProcess, wait_until

BLOCK = "tests.support.jobs.async_block"


def spans(path: Path) -> tuple[list[float], list[float], set[str]]:
    starts, ends, pids = [], [], set()
    for line in path.read_text().splitlines():
        kind, when, pid = line.split()
        (starts if kind == "start" else ends).append(float(when))
        pids.add(pid)
    return starts, ends, pids


def started(queue: RQQueue, ids: list[str]) -> bool:
    return all(queue.get(job_id).status is JobStatus.STARTED for job_id in ids)


def final(queue: RQQueue, ids: list[str]) -> bool:
    return all(queue.get(job_id).is_final for job_id in ids)


def test_n_async_jobs_overlap_in_time_in_one_process(settings, r, tmp_path):
    queue, ledger = RQQueue(r, settings), tmp_path / "ledger"
    ids = [queue.enqueue("async_span", {"path": str(ledger), "seconds": 1.5}) for _ in range(10)]
    worker = WorkerProcess(settings, "--concurrency", "10", "--burst").start(wait_ready=False)
    assert worker.wait(60) == 0, worker.output
    assert {queue.get(job_id).status for job_id in ids} == {JobStatus.FINISHED}
    starts, ends, pids = spans(ledger)
    assert len(starts) == len(ends) == 10 and len(pids) == 1
    assert max(starts) < min(ends)  # every job had started before any ended: all ten ran at once


def test_plain_def_jobs_run_on_its_thread_pool_at_once(settings, r, tmp_path):
    queue, ledger = RQQueue(r, settings), tmp_path / "ledger"
    ids = [queue.enqueue("span", {"path": str(ledger), "seconds": 1.5}) for _ in range(4)]
    ids.append(queue.enqueue("async_whoami", {}))
    worker = WorkerProcess(settings, "--concurrency", "4", "--burst").start(wait_ready=False)
    assert worker.wait(60) == 0, worker.output
    assert {queue.get(job_id).status for job_id in ids} == {JobStatus.FINISHED}
    starts, ends, pids = spans(ledger)
    assert len(starts) == 4 and len(pids) == 1 and max(starts) < min(ends)
    assert queue.get(ids[-1]).result["job_id"] == ids[-1]  # each task sees its own job's context


def test_progress_stop_and_failures_are_per_job(settings, r, tmp_path):
    queue = RQQueue(r, settings)
    with WorkerProcess(settings, "--concurrency", "5") as worker:
        (info,) = [w for w in bootstrap(settings).admin.workers() if w.name == worker.name]
        assert info.concurrency == 5  # `taskq info` (and --json) shows it
        long = queue.enqueue("async_ledger", {"path": str(tmp_path / "l"), "token": "x", "seconds": 60})
        progress = queue.enqueue("async_progress", {"steps": 3, "pause": 0.05})
        failing = queue.enqueue("fail_always", {})
        wait_until(lambda: queue.get(long).status is JobStatus.STARTED, what="the long job to start")
        queue.stop(long)
        stopped = queue.wait(long, 20)
        assert stopped.status is JobStatus.STOPPED and "stopped" in (stopped.error or "")
        done = queue.wait(progress, 20)
        assert done.status is JobStatus.FINISHED and done.progress.done == 3
        assert queue.wait(failing, 20).status is JobStatus.FAILED
        after = queue.enqueue("add", {"a": 1, "b": 2})
        assert queue.wait(after, 20).result == 3  # the worker goes on
    assert not (tmp_path / "l").exists()


def test_a_blocking_async_job_keeps_its_heartbeat_and_is_killed_at_its_timeout(settings, r, tmp_path):
    # heartbeat_interval 0.5 s: a job without a heartbeat for 6.5 s is the reaper's. This job blocks
    # the loop for 60 s with a timeout of 8 s, so heartbeats must go on without the loop, and the
    # timeout must end the job although the loop never gets to cancel it.
    queue = RQQueue(r, settings)
    reaper = Reaper(r, ["default"], 0.0, "test-reaper")
    port = free_port()
    with WorkerProcess(settings, "--concurrency", "4", "--metrics-port", str(port)) as worker:
        blocked = queue.enqueue("async_block", {"path": str(tmp_path / "b"), "seconds": 60}, timeout=8)
        wait_until(lambda: queue.get(blocked).status is JobStatus.STARTED, what="the blocking job")

        def ended() -> bool:
            assert not any(done.requeued or done.failed for done in reaper.run()), "reaped as dead"
            return queue.get(blocked).is_final

        wait_until(ended, timeout=40, interval=0.25, what="the timeout to end the blocking job")
        view = queue.get(blocked)
        assert view.status is JobStatus.FAILED and view.attempts == 1
        assert "JobTimeoutException" in (view.error or "")
        after = queue.enqueue("async_whoami", {})
        assert queue.wait(after, 20).result["pid"] == worker.pid  # same process, loop alive again
        blocked_total = ("taskq_event_loop_blocked_total", (("job_name", BLOCK), ("queue", "default")))
        samples = scrape(port)
        output = worker.read_output()
    assert samples[blocked_total] == 1  # one blocked episode, counted against the job that blocked
    assert ("taskq_event_loop_lag_seconds", ()) in samples
    assert "event loop blocked" in output and f"job_id={blocked}" in output
    assert (tmp_path / "b").read_text().count("end") == 0


def test_a_job_that_ignores_its_timeout_recycles_the_process_and_the_others_go_back(settings, r, tmp_path):
    queue = RQQueue(r, replace(settings, retry_max=0))
    worker = WorkerProcess(settings, "--concurrency", "4").start()
    try:
        others = [
            queue.enqueue("async_ledger", {"path": str(tmp_path / "l"), "token": str(i), "seconds": 60})
            for i in range(3)
        ]
        wait_until(lambda: started(queue, others), what="the other jobs to start")
        stuck = queue.enqueue("async_stubborn", {"seconds": 120}, timeout=2)
        assert worker.wait(40) == Exit.RECYCLED, worker.output
    finally:
        worker.stop()
    view = queue.get(stuck)
    assert view.status is JobStatus.FAILED and "ignored its timeout" in (view.error or "")
    assert {queue.get(job_id).status for job_id in others} == {JobStatus.QUEUED}  # back, not lost
    assert "recycling this worker process; its 3 other running jobs go back" in worker.output


def test_a_sigkilled_async_worker_loses_none_of_its_n_jobs(settings, r, tmp_path):
    queue, ledger = RQQueue(r, settings), tmp_path / "ledger"
    tokens = [f"t{i}" for i in range(8)]
    params = [{"path": str(ledger), "token": t, "seconds": 2} for t in tokens]
    ids = [queue.enqueue("async_ledger", p, retry=2) for p in params]  # the reaper retries what died
    first = WorkerProcess(settings, "--concurrency", "8").start()
    try:
        wait_until(lambda: started(queue, ids), what="all eight jobs to start in one process")
        first.signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.stop()
    assert not ledger.exists()  # killed before any finished
    with WorkerProcess(settings, "--concurrency", "8"):
        wait_until(lambda: final(queue, ids), timeout=60, what="the reaper to hand the jobs back")
    assert {queue.get(job_id).status for job_id in ids} == {JobStatus.FINISHED}
    assert sorted(ledger.read_text().split()) == sorted(tokens)  # each ran to its end exactly once


def test_sigterm_lets_the_running_jobs_finish_and_puts_back_those_claimed_ahead(settings, r, tmp_path):
    queue, ledger = RQQueue(r, settings), tmp_path / "ledger"
    ids = [queue.enqueue("async_span", {"path": str(ledger), "seconds": 2}) for _ in range(6)]
    worker = WorkerProcess(settings, "--concurrency", "2").start()
    try:
        wait_until(
            lambda: ledger.exists() and ledger.read_text().count("start") == 2, what="two jobs running"
        )
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0, worker.output
    finally:
        worker.stop()
    statuses = [queue.get(job_id).status for job_id in ids]
    assert statuses.count(JobStatus.FINISHED) == 2  # the two running ones ran to their end
    assert statuses.count(JobStatus.QUEUED) == 4  # the one claimed ahead went back, unrun, with the rest
    assert ledger.read_text().count("end") == 2


def test_concurrency_takes_no_mode(settings):
    worker = WorkerProcess(settings, "--concurrency", "4", "--mode", "pool").start(wait_ready=False)
    assert worker.wait(30) == 2 and "takes no --mode" in worker.output
