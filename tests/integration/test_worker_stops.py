"""A worker stops when told, whatever Redis is doing: unreachable at start, or gone while an
outcome is being recorded. No loop may spin once the stop flag is set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.connection import connect
from app.worker.outage import BURST_PATIENCE
from chaos.servers import PrivateRedis, free_port
from tests.support.processes import ROOT, wait_until

pytestmark = pytest.mark.integration


class LoggedWorker:
    """`python -m app.worker` with its output in a file, so a test can wait for a log line."""

    def __init__(self, settings, tmp_path: Path, *args: str) -> None:
        self.log = tmp_path / "worker.log"
        env = {**os.environ, **settings.to_env()}
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.worker", *args], cwd=ROOT, env=env, stdout=out, stderr=out
            )

    def text(self) -> str:
        return self.log.read_text()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def unreachable(settings):
    return replace(settings, redis_url=f"redis://u:p@127.0.0.1:{free_port()}/0")


def test_sigterm_stops_a_worker_that_never_reached_redis(unreachable, tmp_path):
    worker = LoggedWorker(unreachable, tmp_path)
    try:
        wait_until(lambda: "Redis unreachable" in worker.text(), timeout=20, what="the outage log line")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=10) == 0, worker.text()
    finally:
        worker.stop()


def test_burst_gives_up_on_a_redis_that_stays_unreachable(unreachable, tmp_path):
    worker = LoggedWorker(unreachable, tmp_path, "--burst")
    try:
        assert worker.process.wait(timeout=BURST_PATIENCE + 20) == 1
    finally:
        worker.stop()
    errors = [line for line in worker.text().splitlines() if line.startswith("taskq:")]
    assert len(errors) == 1 and "unreachable" in errors[0] and "--burst gives up" in errors[0], worker.text()


def test_sigterm_while_an_outcome_waits_for_redis_does_not_spin(settings, tmp_path):
    server = PrivateRedis().start()
    try:
        local = replace(settings, redis_url=server.url)
        queue = RQQueue(connect(local), local)
        job_id = queue.enqueue("sleep", {"seconds": 1.0})
        worker = LoggedWorker(local, tmp_path, "--mode", "inline")
        try:
            wait_until(lambda: queue.get(job_id).status is JobStatus.STARTED, timeout=20, what="the job")
            server.kill()
            worker.process.send_signal(signal.SIGTERM)  # warm: the job ends, its outcome waits for Redis
            wait_until(lambda: "Redis unreachable" in worker.text(), timeout=20, what="the recording to wait")
            before, started = worker.cpu_seconds(), time.monotonic()
            time.sleep(2.0)  # the window in which CPU use is measured
            used = (worker.cpu_seconds() - before) / (time.monotonic() - started)
            assert used < 0.3, f"the worker used {used:.0%} of a core while waiting"
            worker.process.send_signal(signal.SIGTERM)  # cold: give up, the reaper retakes the job
            assert worker.process.wait(timeout=10) == 0, worker.text()
            assert "job outcome not recorded" in worker.text()
        finally:
            worker.stop()
    finally:
        server.remove()
