"""Issue 18, items 1 and 8: one `taskq:` prefix and one table of exit codes for both commands;
a supervisor that stops on a broken job path and backs off a crash loop."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from app.exits import Exit
from chaos.servers import PrivateRedis
from tests.e2e.conftest import cli_env
from tests.support.processes import WorkerProcess, wait_until

pytestmark = pytest.mark.e2e
BROKEN = {"QUEUE_EXTRA_JOBS": "broken=tests.support.broken_job.job"}
WORKER = [sys.executable, "-m", "app.worker"]


def test_a_broken_job_path_exits_5_from_both_commands_with_the_one_prefix(taskq):
    for run in (taskq("worker", "--burst", env=BROKEN), taskq("--burst", env=BROKEN, command=WORKER)):
        assert run.code == Exit.BROKEN_JOB_PATH == 5, (run.code, run.err)
        (line,) = [line for line in run.err.splitlines() if line.startswith("taskq:")]
        assert line.startswith("taskq: broken job path: job 'broken'"), run.err
        assert "taskq_dependency_that_is_not_installed" in line and "Traceback" not in run.err
    assert taskq("jobs", env=BROKEN).code == Exit.BROKEN_JOB_PATH


def test_usage_and_other_errors_share_the_prefix_and_the_table(taskq):
    usage = taskq("worker", "--no-such-flag")
    assert usage.code == Exit.USAGE and usage.err.splitlines()[-1].startswith("taskq: No such option")
    bad_setting = taskq("--burst", env={"WORKER_MODE": "threads"}, command=WORKER)
    assert bad_setting.code == Exit.ERROR
    assert bad_setting.err.strip() == "taskq: WORKER_MODE='threads': must be 'fork', 'pool' or 'inline'"
    assert not any(line.startswith(("Error:", "worker:")) for line in usage.err.splitlines())


def test_a_missing_password_says_to_put_it_in_redis_url(taskq):
    with PrivateRedis("--requirepass", "s3cret-pw") as server:
        env = {"REDIS_URL": server.url, "REDIS_RETRY_SECONDS": "0.1"}
        for run in (taskq("info", env=env), taskq("--burst", env=env, command=WORKER)):
            assert run.code == Exit.ERROR, run.err
            assert run.err.splitlines()[-1] == (
                f"taskq: Redis at {server.url} refused access: Redis needs a password: put it in "
                "REDIS_URL (redis://USER:PASSWORD@host:port/db)"
            ), run.err


def test_the_supervisor_stops_with_the_childs_broken_job_path_code(settings, elsewhere):
    worker = WorkerProcess(settings, "--processes", "2", env=BROKEN, cwd=elsewhere).start(wait_ready=False)
    code = worker.wait(timeout=60)
    assert code == Exit.BROKEN_JOB_PATH, worker.output
    assert "restarting cannot fix that" in worker.output
    assert "supervisor stopped; 0 worker restarts" in worker.output


def test_a_crash_loop_backs_off_per_slot_and_counts_the_restarts(settings, elsewhere, tmp_path):
    """Children refused by Redis (a wrong password) exit 1 at once: each slot's pause grows."""
    log = tmp_path / "supervisor.log"
    with PrivateRedis("--requirepass", "right") as server, log.open("w") as out:
        env = cli_env(settings, REDIS_URL=server.url_for(password="wrong"))
        process = subprocess.Popen(
            [*WORKER, "--processes", "2"], cwd=elsewhere, env=env, stdout=out, stderr=out
        )
        try:
            wait_until(
                lambda: (
                    all(f"slot={s} exit 1: an error lived=" in log.read_text() for s in (0, 1))
                    and len(re.findall(r"in 2\.0s", log.read_text())) >= 2
                ),
                timeout=60,
                interval=0.2,
                what="both slots to back off to 2 s",
            )
        finally:
            process.terminate()
            assert process.wait(timeout=30) == Exit.OK
    text = log.read_text()
    for slot in (0, 1):
        pauses = re.findall(rf"slot={slot} exit 1: an error lived=[\d.]+s; restart \d+ in ([\d.]+)s", text)
        assert pauses[:3] == ["0.5", "1.0", "2.0"], text
    restarts = re.findall(r"restart (\d+) in", text)
    assert [int(n) for n in restarts] == sorted(int(n) for n in restarts), text
    assert re.search(r"supervisor stopped; \d+ worker restarts", text)


def test_the_demo_next_to_another_worker_stops_its_own_worker_cleanly(taskq, settings):
    with WorkerProcess(settings):
        run = taskq("demo", env={"LOG_LEVEL": "WARNING"}, timeout=90)
    assert run.code == 0, run.out + run.err
    assert "stopped the worker (exit 0)" in run.out, run.out
