"""`make demo`: the main flow end to end, on an embedded server unless REDIS_URL is set.

Starts a worker process, enqueues `ingest_doc` for every shipped document with the spec's
snippet, shows progress, prints a table of results, and stops everything it started.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from app.bootstrap import bootstrap, default_settings
from app.config import redact_url
from app.exits import describe
from app.infrastructure.process import stop_process
from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.job_paths import INGEST_DOC_JOB
from app.infrastructure.queue.port import JobQueue, JobStatus, JobView
from app.infrastructure.redis.embedded import EmbeddedRedis

DEMO_TIMEOUT = 60.0


def document_ids(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.iterdir() if p.is_file() and p.suffix == ".txt")


def main() -> int:
    settings = default_settings()
    with contextlib.ExitStack() as stack:
        url = os.environ.get("REDIS_URL")
        if not url:
            server = stack.enter_context(EmbeddedRedis())
            url = server.url
            print(f"REDIS_URL is not set: started a private server ({Path(server.binary).name}) at {url}")
        else:
            print(f"using REDIS_URL={redact_url(url)}")
        env = {**os.environ, "REDIS_URL": url, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
        name = f"demo-{os.getpid()}"
        worker = subprocess.Popen([sys.executable, "-m", "app.worker", "--name", name], env=env)
        stack.callback(_stop, worker)
        services = bootstrap(replace(settings, redis_url=url))
        _wait_registered(services.admin, name, worker)
        print(f"started a worker process (pid {worker.pid})")

        queue = services.queue
        jobs = {}
        for doc_id in document_ids(settings.documents_dir):
            job_id = queue.enqueue(job_name=INGEST_DOC_JOB, params={"doc_id": doc_id})
            jobs[doc_id] = job_id
            print(f"enqueued ingest_doc(doc_id={doc_id!r}) -> job {job_id}")
        views = _follow(queue, jobs)
        print()
        print(_table(views))
        return 0 if all(v.status is JobStatus.FINISHED for v in views.values()) else 1


def _wait_registered(admin: QueueAdmin, name: str, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker is registered (it then stops cleanly on SIGTERM), or has exited; bounded.

    Another worker on the same Redis may run every job first: without this the demo could stop
    its own worker before it had started at all.
    """
    deadline = time.monotonic() + DEMO_TIMEOUT
    while worker.poll() is None and time.monotonic() < deadline:
        if any(w.name == name for w in admin.workers()):
            return
        time.sleep(0.05)


def _follow(queue: JobQueue, jobs: dict[str, str]) -> dict[str, JobView]:
    """Print each job's progress as it changes, until every job is final (bounded)."""
    shown: dict[str, str] = {}
    deadline = time.monotonic() + DEMO_TIMEOUT
    while True:
        views = {doc_id: queue.get(job_id) for doc_id, job_id in jobs.items()}
        for doc_id, view in views.items():
            line = view.status.value
            if view.progress:
                line += f" {view.progress.done}/{view.progress.total} {view.progress.message}"
            if shown.get(doc_id) != line:
                shown[doc_id] = line
                print(f"  {doc_id:<12} {line}")
        if all(v.is_final for v in views.values()) or time.monotonic() > deadline:
            return views
        time.sleep(0.05)


def _table(views: dict[str, JobView]) -> str:
    rows = [("document", "status", "chunks", "words", "sha256", "seconds")]
    for doc_id, view in views.items():
        result = view.result if isinstance(view.result, dict) else {}
        seconds = (
            (view.ended_at - view.started_at).total_seconds() if view.ended_at and view.started_at else 0
        )
        rows.append(
            (
                doc_id,
                view.status.value,
                str(result.get("chunks", "-")),
                str(result.get("words", "-")),
                str(result.get("sha256", view.error or "-"))[:16],
                f"{seconds:.3f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    stop_process(worker, grace=30)
    print(f"stopped the worker ({describe(worker.returncode)})")


if __name__ == "__main__":
    sys.exit(main())
