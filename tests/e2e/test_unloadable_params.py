"""Issue 18 item 6: params a worker cannot load are refused at enqueue when that is certain
(a class of the enqueueing script's `__main__`), and otherwise fail naming what was missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.infrastructure.queue.rq_queue import RQQueue
from tests.e2e.conftest import cli_env
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.e2e

MAIN_SCRIPT = """
from dataclasses import dataclass
from app.bootstrap import bootstrap
from app.infrastructure.queue.errors import SerializationError

@dataclass
class Point:
    x: int

try:
    bootstrap().queue.enqueue("echo", {"where": Point(1)})
except SerializationError as exc:
    print(exc)
"""

PRODUCER_ONLY = """
import sys
from producer_only import Point
from app.bootstrap import bootstrap
print(bootstrap().queue.enqueue("echo", {"where": Point(1)}))
"""


def run_script(source: str, folder, settings) -> str:
    done = subprocess.run(
        [sys.executable, "-c", source],
        cwd=folder,
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_class_of_the_scripts_main_is_refused_at_enqueue(settings, r, elsewhere):
    script = elsewhere / "enqueue_point.py"
    script.write_text(MAIN_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=elsewhere, env=cli_env(settings), capture_output=True, text=True
    )
    assert "__main__.Point is defined in the enqueueing script's __main__" in done.stdout, done.stderr
    assert "(key 'where')" in done.stdout
    assert not r.keys("rq:job:*")


def test_a_class_the_worker_cannot_import_is_named_in_the_failure(taskq, settings, r, elsewhere):
    (elsewhere / "producer_only.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Point:\n    x: int\n"
    )
    job_id = run_script(PRODUCER_ONLY, elsewhere, settings)
    with WorkerProcess(settings):  # from the repository: producer_only is not importable there
        view = RQQueue(r, settings).wait(job_id, timeout=15)
    assert view.status.value == "failed"
    assert "ModuleNotFoundError: No module named 'producer_only'" in view.error, view.error
    listed = taskq("failed", "list")
    assert "No module named 'producer_only'" in " ".join(listed.out.split()), listed.out
    shown = taskq("failed", "show", job_id)
    assert (
        "Traceback (most recent call last)" in shown.out
        and "The above exception was the direct cause" in shown.out
    )
    assert shown.out.rstrip().splitlines()[-1].startswith("PayloadError: ")
