"""`taskq stop` right after a job is claimed: the stop must not be lost before the job runs.

rq's stop-job command reaches the worker as soon as the job hash names the worker (at claim),
possibly before the job is running anywhere. These tests put the worker exactly in that window:
claimed, stop recorded, nothing running yet.
"""

from __future__ import annotations

import signal

import pytest

from app.bootstrap import bootstrap
from app.infrastructure.queue.schema import Ending
from app.worker.preflight import resolve_jobs

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("mode", ["fork", "pool", "inline"])
def test_a_stop_recorded_between_claim_and_run_stops_the_job(settings, r, mode):
    services = bootstrap(settings, connection=r)
    job_id = services.queue.enqueue("sleep", {"seconds": 5})
    functions, _ = resolve_jobs(services.registry)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    worker = services.worker(functions, mode=mode)
    try:
        worker.presence.register(worker)
        worker.mode.start()
        claim = worker._next(burst=True)
        assert claim is not None and claim.job_id == job_id
        worker.stop_job(job_id)  # the command, delivered while nothing runs yet
        outcome = worker._execute(claim)
        assert outcome.ending is Ending.STOPPED, outcome
        assert not worker.shutdown.stopping(job_id)  # the next job is not stopped by this request
    finally:
        worker.mode.close()
        worker.presence.deregister()
        for sig, handler in saved.items():
            signal.signal(sig, handler)
