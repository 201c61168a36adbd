"""An idle worker claims in the same round trip as its blocking wait: the claim runs in Redis the
moment the wake-up pop returns, with the server's clock. Real Redis, real worker processes."""

from __future__ import annotations

import random
import signal
import time
from dataclasses import replace

import pytest

from app.infrastructure.queue import lua
from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.record import parse_rq_time
from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


def test_the_lua_clock_formats_times_as_rq_does(r):
    """`server_now` in lib_worker.lua, fed chosen instants instead of TIME (no key is written)."""
    library = lua.shared_function("server_now")
    probe = r.register_script(
        library.replace("redis.call('TIME')", "{ARGV[1], ARGV[2]}")
        + "\nlocal now, iso = server_now(); return {tostring(now), iso}"
    )
    edges = [0, 951_782_400, 951_868_800, 1_709_164_800, 1_735_689_599, 1_735_689_600, 4_102_444_800]
    rng = random.Random(7)
    for seconds in edges + [rng.randrange(0, 4_000_000_000) for _ in range(500)]:
        micros = rng.randrange(1_000_000)
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"
        assert probe(args=[seconds, micros])[1].decode() == expected


def test_a_job_claimed_after_a_long_idle_wait_records_when_it_really_started(settings, r):
    settings = replace(settings, idle_poll=3.0)
    queue = RQQueue(r, settings)
    with WorkerProcess(settings):
        # The condition under test is an idle worker whose wait began a while ago: the client
        # clock it sent with the claim is that old; the recorded start must not be.
        time.sleep(1.0)
        job_id = queue.enqueue("add", {"a": 1, "b": 1})
        view = queue.wait(job_id, timeout=10)
    raw = r.hget(f"rq:job:{job_id}", "started_at")
    started = parse_rq_time(raw)
    assert view.result == 2 and started is not None and view.enqueued_at is not None
    # The claim went out with a client clock from before the enqueue; the start is after it.
    assert started >= view.enqueued_at


def test_a_claim_that_lands_while_the_worker_stops_goes_back_to_its_queue(settings, r):
    settings = replace(settings, idle_poll=3.0)
    queue = RQQueue(r, settings)
    worker = WorkerProcess(settings).start()
    try:
        wait_until(lambda: r.hget(f"rq:worker:{worker.name}", "state") == b"idle", what="an idle worker")
        worker.signal(signal.SIGTERM)  # it is blocked in its wait: the stop is noted, the wait goes on
        job_id = queue.enqueue("add", {"a": 2, "b": 2})  # wakes it; Redis claims right away
        assert worker.wait(timeout=10) == 0
    finally:
        worker.stop()
    assert queue.get(job_id).status is JobStatus.QUEUED
    assert f"job requeued id={job_id} reason=worker stopping" in worker.output
    with WorkerProcess(settings):
        assert queue.wait(job_id, timeout=10).result == 4
