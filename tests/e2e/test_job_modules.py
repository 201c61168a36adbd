"""Issue 18 items 2 and 4: `taskq worker` is `python -m app.worker`, wherever it is started.

Job modules are found as `python -m` finds them (the current directory first, then installed
packages); `ingest_doc`'s folders do not depend on the current directory.
"""

from __future__ import annotations

import sys

import pytest

from app.config import PROJECT_ROOT
from app.exits import Exit
from app.infrastructure.queue.rq_queue import RQQueue

pytestmark = pytest.mark.e2e
WORKER = [sys.executable, "-m", "app.worker"]
SHOUT = {"QUEUE_EXTRA_JOBS": "shout=service_jobs.shout"}


@pytest.fixture
def project(tmp_path):
    """A service's own folder with a job module of its own, not installed, not on PYTHONPATH."""
    folder = tmp_path / "service"
    folder.mkdir()
    (folder / "service_jobs.py").write_text("def shout(word):\n    return word.upper()\n")
    return folder


def test_taskq_worker_finds_job_modules_where_python_m_app_worker_does(taskq, settings, r, project):
    queue = RQQueue(r, settings)
    shown = taskq("jobs", "--json", env=SHOUT, cwd=project)
    assert shown.code == Exit.OK, shown.out + shown.err
    assert {row["name"]: row["resolves"] for row in shown.json()}["shout"] is True
    for command in (None, WORKER):
        args = ["--burst", "--mode", "inline"]
        job_id = taskq("enqueue", "shout", "word=hi", env=SHOUT, cwd=project).out.strip()
        ran = taskq(
            *(["worker", *args] if command is None else args), env=SHOUT, cwd=project, command=command
        )
        assert ran.code == Exit.OK, ran.err
        assert queue.get(job_id).result == "HI"


def test_elsewhere_both_commands_refuse_the_same_missing_module(taskq, elsewhere):
    for run in (taskq("worker", "--burst", env=SHOUT), taskq("--burst", env=SHOUT, command=WORKER)):
        assert run.code == Exit.BROKEN_JOB_PATH, run.err
        assert "module 'service_jobs' does not exist" in run.err
    assert taskq("jobs", env=SHOUT).code == Exit.BROKEN_JOB_PATH


def test_a_worker_started_elsewhere_finds_the_documents_and_says_where(taskq, settings, r, tmp_path):
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("ingest_doc", {"doc_id": "preamble"})
    env = {"DOCUMENTS_DIR": "", "INGESTED_DIR": str(tmp_path / "chunks"), "LOG_LEVEL": "INFO"}
    ran = taskq("worker", "--burst", "--mode", "inline", env=env)
    assert ran.code == Exit.OK, ran.err
    view = queue.get(job_id)
    assert view.status.value == "finished", view.error
    assert (tmp_path / "chunks" / "preamble.jsonl").exists()
    assert f"documents from DOCUMENTS_DIR={PROJECT_ROOT / 'data' / 'documents'}" in ran.err
