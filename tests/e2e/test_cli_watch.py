"""`taskq status --watch` in a real terminal (a pty, through pexpect): a live bar, then the outcome."""

from __future__ import annotations

import re

import pexpect
import pytest

from app.infrastructure.queue.rq_queue import RQQueue
from tests.e2e.conftest import ROOT, TASKQ, cli_env
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.e2e
#: Between two words on a terminal: spaces, and rich's color codes.
GAP = r"(?:\x1b\[[0-9;]*m|\s)+"


def watch(settings, *args: str) -> pexpect.spawn:
    env = cli_env(settings)
    env.pop("COLUMNS")  # the pty's own size counts, as in a real terminal
    return pexpect.spawn(
        str(TASKQ), list(args), cwd=str(ROOT), env=env, encoding="utf-8", dimensions=(30, 120), timeout=20
    )


def test_watch_shows_live_progress_then_the_result_and_exits_0(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("progress", {"steps": 6, "pause": 0.4})
    child = watch(settings, "status", job_id, "--watch")
    try:
        child.expect(f"{job_id} queued")
        with WorkerProcess(settings):
            child.expect(f"{job_id} started")
            seen = set()
            while len(seen) < 2:  # the bar moves while the job runs, before it ends
                child.expect(rf"(\d)/6{GAP}step \d")
                seen.add(child.match.group(1))
            child.expect(f"{job_id} finished")
            child.expect(rf"result{GAP}6")
            child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_watch_of_a_failing_job_shows_the_error_and_exits_3(settings, r):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("fail_always", {"message": "watched it fail"}, retry=0)
    child = watch(settings, "status", job_id, "--watch")
    try:
        with WorkerProcess(settings):
            child.expect(f"{job_id} failed")
            child.expect(re.escape("ValueError: watched it fail"))
            child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 3
