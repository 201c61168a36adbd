"""`taskq stop` right after a job is claimed: the stop must not be lost before the job runs.

rq's stop-job handler records the stop (`_stopped_job_id`) as soon as the worker hash names the
job (at claim), then kills the horse or interrupts the inline job, if there is one yet. These
tests put the worker exactly in that window: claimed, stop recorded, nothing running yet.
"""

from __future__ import annotations

import signal

import pytest

from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.rq_queue import RQQueue
from app.worker.preflight import resolve_jobs
from app.worker.worker import Worker

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["fork", "inline"])
def test_a_stop_recorded_between_claim_and_run_stops_the_job(settings, r, mode):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("sleep", {"seconds": 5})
    registry = JobRegistry(extra=settings.extra_jobs)
    functions, _ = resolve_jobs(registry)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    worker = Worker(r, settings, registry, functions, settings.queue_names, mode=mode)
    try:
        worker.register_birth()
        claim = worker._next(burst=True)
        assert claim is not None and claim.job_id == job_id
        worker._stopped_job_id = job_id  # what rq's stop-job handler does when it finds nothing to kill
        outcome = worker._execute(claim)
        assert outcome.kind == "stopped", outcome
        assert worker._stopped_job_id is None  # the next job is not stopped by this request
    finally:
        worker.register_death()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
