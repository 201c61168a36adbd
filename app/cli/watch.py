"""`taskq status --watch` and `taskq enqueue --wait`: follow a job until it ends.

The bar is fed by what the job reports (`report_progress`); a job that reports nothing shows
its status and a spinner. Polling, not pubsub: progress is a field of the job's meta, and a
read every 0.1 s per watching operator is nothing for Redis.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from app.infrastructure.queue.errors import WaitTimeoutError
from app.infrastructure.queue.port import JobStatus, JobView
from app.infrastructure.queue.rq_queue import RQQueue

POLL = 0.1


def follow(queue: RQQueue, job_id: str, timeout: float | None, console: Console, live: bool) -> JobView:
    """Poll the job until it is final; with `live`, show a progress bar meanwhile.

    Raises:
        WaitTimeoutError: `timeout` seconds passed first.
        JobNotFoundError: no such job (or it expired while watched).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    view = queue.get(job_id)
    if not live:
        return view if view.is_final else queue.wait(job_id, timeout if timeout is not None else 10**9)
    with _bar(console) as bar:
        task = bar.add_task(_label(view), total=None, message="")
        while True:
            _update(bar, task, view)
            if view.is_final:
                return view
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimeoutError(job_id, timeout or 0, view.status.value)
            time.sleep(POLL)
            view = queue.get(job_id)


def _bar(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
        console=console,
        refresh_per_second=10,
    )


def _label(view: JobView) -> str:
    return f"{view.id} {view.status.value}"


def _update(bar: Progress, task: TaskID, view: JobView) -> None:
    progress = view.progress
    if progress is not None:
        done = progress.total if view.status is JobStatus.FINISHED else progress.done
        bar.update(task, total=progress.total, completed=done, message=progress.message)
    elif view.is_final:
        bar.update(task, total=1, completed=1 if view.status is JobStatus.FINISHED else 0)
    bar.update(task, description=_label(view))
    if view.is_final:
        bar.stop_task(task)
