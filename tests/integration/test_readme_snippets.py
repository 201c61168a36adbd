"""Every Python snippet of the READMEs runs, as written, against a real Redis and worker."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def snippets(relative: str) -> list[str]:
    text = (ROOT / relative).read_text()
    return [
        textwrap.dedent(code) for code in re.findall(r"```python\n(.*?)```", text, flags=re.S)
    ]  # in lists too


@pytest.fixture
def environment(settings, monkeypatch):
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    return settings


def test_queue_readme_snippets_run_in_order(environment, r):
    found = snippets("app/infrastructure/queue/README.md")
    assert len(found) >= 3
    namespace = {"redis_conn": r}
    with WorkerProcess(environment):
        for code in found:
            exec(compile(code, "queue-README", "exec"), namespace)
    assert namespace["done"].status.value == "finished"


def test_root_readme_snippet_runs(environment, r):
    """Issue 18 item 3: the first snippet builds its own client (nothing is handed to it)."""
    (code,) = snippets("README.md")[:1]
    namespace: dict = {}
    exec(compile(code, "README", "exec"), namespace)
    assert r.exists(f"rq:job:{namespace['job_id']}")


def test_root_readme_workflow_snippet_runs(environment, r):
    """Issue 14: the root README's group, after its first snippet (which builds `queue`)."""
    namespace: dict = {}
    first, *rest = snippets("README.md")
    for code in [first, *(code for code in rest if "queue.group(" in code)]:
        exec(compile(code, "README", "exec"), namespace)
    assert r.exists(f"taskq:wf:{namespace['batch']}")


def test_root_readme_fastapi_snippet_serves_an_enqueue(environment, r):
    """Issue 13: the root README's FastAPI snippet, as written, under FastAPI's test client."""
    from fastapi.testclient import TestClient

    (code,) = [code for code in snippets("README.md") if "FastAPI(lifespan=lifespan)" in code]
    namespace: dict = {}
    exec(compile(code, "README", "exec"), namespace)
    with TestClient(namespace["app"]) as client:  # runs the lifespan: bootstrap_async, aclose
        response = client.post("/documents/123")
    assert response.status_code == 202
    assert r.hget(f"rq:job:{response.json()['job_id']}", "status") == b"queued"


def test_the_readmes_say_how_to_reach_the_taskq_command():
    """Issue 18 item 3: after `make demo` the console script is in .venv/bin, not on PATH."""
    for relative in ("README.md", "app/cli/README.md", "app/worker/README.md"):
        text = (ROOT / relative).read_text()
        assert "source .venv/bin/activate" in text and ".venv/bin/taskq" in text, relative
    taskq = Path(sys.executable).parent / "taskq"
    shown = subprocess.run([str(taskq), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "Usage: taskq" in shown.stdout


def test_worker_readme_job_example_runs(environment):
    namespace: dict = {}
    for code in snippets("app/worker/README.md"):
        exec(compile(code, "worker-README", "exec"), namespace)
    assert namespace["resize_image"]("img-1") == {"image_id": "img-1", "passes": 3}


def test_redis_readme_snippets_run_in_order(environment, r):
    found = snippets("app/infrastructure/redis/README.md")
    assert len(found) == 2
    namespace: dict = {}
    for code in found:
        exec(compile(code, "redis-README", "exec"), namespace)
    assert namespace["counter"].script.sha


def test_jobs_readme_snippet_runs(environment):
    (code,) = snippets("app/worker/jobs/README.md")
    namespace: dict = {}
    exec(compile(code, "jobs-README", "exec"), namespace)
    assert namespace["summary"]["words"] > 0
