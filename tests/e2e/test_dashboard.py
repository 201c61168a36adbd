"""`taskq dashboard`: rq-dashboard on our Redis shows our queues and a failed job, in headless Chromium.

The browser test skips, saying why, where /usr/bin/chromium is missing (`make browser-test`
installs it). The JSON check needs no browser and always runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.infrastructure.process import stop_process
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.serialization import SIGNED_MAGIC
from chaos.servers import free_port
from tests.e2e.conftest import ROOT, TASKQ, cli_env
from tests.support.inprocess import drain
from tests.support.processes import wait_until

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
#: Quiet, offline, throwaway: the network here is closed, and without these flags Chromium
#: keeps trying to reach its services.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",  # let the page's scripts fetch and render before the dump
]


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.read().decode()
    except OSError:
        return None


@pytest.fixture
def dashboard(settings) -> Iterator[str]:
    with serving(settings) as base:
        yield base


@contextlib.contextmanager
def serving(settings) -> Iterator[str]:
    """`taskq dashboard` on a free loopback port; its base URL. Stopped by pid at the end."""
    port = free_port()
    process = subprocess.Popen(
        [str(TASKQ), "dashboard", "--port", str(port), "--poll-interval", "500"],
        cwd=ROOT,
        env=cli_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: get(f"{base}/0/data/queues.json") or process.poll() is not None,
            timeout=30,
            what="the dashboard to answer",
        )
        assert process.poll() is None, process.communicate()[0]
        yield base
    finally:
        stop_process(process, grace=10)
        if process.stdout:
            process.stdout.close()


@pytest.fixture
def failed_job(settings, r) -> str:
    queue = RQQueue(r, settings)
    queue.enqueue("add", {"a": 1, "b": 1}, priority="low")
    job_id = queue.enqueue("fail_always", {"message": "shown in the dashboard"}, retry=0)
    drain(settings, r)
    queue.enqueue("add", {"a": 1, "b": 1}, priority="high")
    return job_id


def test_dashboard_data_shows_our_queues_and_the_failed_job(dashboard, failed_job):
    queues = {q["name"]: q for q in json.loads(get(f"{dashboard}/0/data/queues.json") or "{}")["queues"]}
    assert {"high", "default", "low"} <= set(queues)
    assert (queues["high"]["count"], queues["default"]["failed_job_registry_count"]) == (1, 1)
    failed = json.loads(get(f"{dashboard}/0/data/jobs/default/failed/8/asc/1.json") or "{}")
    (job,) = failed["jobs"]
    assert job["id"] == failed_job
    assert "ValueError: shown in the dashboard" in job["exc_info"]


def test_signed_jobs_are_read_with_our_serializer(settings, r):
    """With QUEUE_SIGNING_KEY, results and meta are signed: plain rq-dashboard answers 500 on them."""
    signed = replace(settings, signing_key=b"dashboard-test-signing-key")
    queue = RQQueue(r, signed)
    job_id = queue.enqueue("echo", {"word": "signed"}, meta={"source": "test"})
    drain(signed, r)
    assert r.hget(f"rq:job:{job_id}", "meta").startswith(SIGNED_MAGIC)
    with serving(signed) as base:
        finished = json.loads(get(f"{base}/0/data/jobs/default/finished/8/asc/1.json") or "{}")
        job = json.loads(get(f"{base}/0/data/job/{job_id}.json") or "{}")
    assert [j["id"] for j in finished["jobs"]] == [job_id]
    assert (job["result"], json.loads(job["metadata"])["source"]) == ({"word": "signed"}, "test")


def test_a_groups_callbacks_and_a_chains_steps_show_as_rq_jobs(settings, r):
    """Issue 14: what waits in a workflow is an rq job like any other (deferred, then canceled or run)."""
    queue = RQQueue(r, settings)
    gid = queue.group(
        [JobRequest("add", {"a": 1, "b": 1})],
        on_success=JobRequest("echo", {}),
        on_failure=JobRequest("echo", {}),
    )
    ids = queue.chain([JobRequest("add", {"a": 1, "b": 1}), JobRequest("double", {})], pass_result="prev")
    callbacks = queue.workflow(gid).callbacks
    with serving(settings) as base:
        deferred = json.loads(get(f"{base}/0/data/jobs/default/deferred/8/asc/1.json") or "{}")
        step = json.loads(get(f"{base}/0/data/job/{ids[1]}.json") or "{}")
        drain(settings, r)
        canceled = json.loads(get(f"{base}/0/data/jobs/default/canceled/8/asc/1.json") or "{}")
        done = json.loads(get(f"{base}/0/data/job/{ids[1]}.json") or "{}")
    assert {j["id"] for j in deferred["jobs"]} == {
        callbacks["on_success"][0],
        callbacks["on_failure"][0],
        ids[1],
    }
    assert step["status"] == "deferred"
    assert [j["id"] for j in canceled["jobs"]] == [callbacks["on_failure"][0]]
    assert (done["status"], done["result"]) == ("finished", 4)


def test_dashboard_renders_in_headless_chromium(dashboard, failed_job, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `make browser-test` installs Debian's chromium")
    overview = dump_dom(f"{dashboard}/", tmp_path / "profile-1")
    for name in ("high", "default", "low"):
        assert f">{name}<" in overview, f"queue {name} not rendered"
    failed_page = dump_dom(f"{dashboard}/0/view/jobs/default/failed/8/asc/1", tmp_path / "profile-2")
    assert failed_job in failed_page
    assert "shown in the dashboard" in failed_page


def dump_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, from a fresh Chromium; its whole process group is stopped."""
    process = subprocess.Popen(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its renderer and helpers share its group: stopped together
    )
    try:
        out, _ = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 0 or out, f"chromium exited {process.returncode} with no page"
    return out
