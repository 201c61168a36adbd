"""Rich tables for what the CLI shows: a job, the queues, the workers, the failed jobs."""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.table import Table

from app.infrastructure.queue.admin import STATES, FailedJob, LimitUse, QueueCounts, WaitingJob, WorkerInfo
from app.infrastructure.queue.port import JobStatus, JobView

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80


def age(seconds: float | None) -> str:
    """A duration for people: `0.4s`, `12s`, `5m`, `3h`, `2d`."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def since(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "-"
    now = now or datetime.now(timezone.utc)
    return f"{age(max(0.0, (now - when).total_seconds()))} ago"


def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC" if when else "-"


#: The longest error shown in a `taskq failed list` row (a param's repr can make it 100 KB long).
ERROR_CELL = 200


def cut(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters, an ellipsis where it was cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def show_value(value: Any) -> str:
    """A result or a param, on one line: JSON when it is JSON-safe, else its repr, bounded."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = _short.repr(value)
    return text if len(text) <= 300 else text[:297] + "..."


def job_table(view: JobView) -> Table:
    """One job, field by field (`taskq status`, `taskq failed show`)."""
    table = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("id", view.id),
        ("job", view.job_name),
        ("status", view.status.value),
        ("queue", view.queue),
        ("params", show_value(dict(view.params))),
        ("attempts", f"{view.attempts} of {view.max_attempts}"),
        ("enqueued", stamp(view.enqueued_at)),
        ("started", stamp(view.started_at)),
        ("ended", stamp(view.ended_at)),
    ]
    if view.started_at and view.ended_at:
        rows.append(("took", age((view.ended_at - view.started_at).total_seconds())))
    if view.worker:
        rows.append(("worker", view.worker))
    if view.progress:
        p = view.progress
        rows.append(("progress", f"{p.done}/{p.total} {p.message}".rstrip()))
    if view.status is JobStatus.FINISHED:
        rows.append(("result", show_value(view.result)))
    elif view.error:
        rows.append(("error", view.error))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _table(title: str) -> Table:
    """A compact table: one space between columns, so `info` fits in 80 columns."""
    return Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", padding=0, pad_edge=False)


def counts_table(counts: Sequence[QueueCounts]) -> Table:
    table = _table("queues")
    table.add_column("queue")
    for state in STATES:
        table.add_column(state, justify="right")
    table.add_column("oldest", justify="right")
    for c in counts:
        table.add_row(c.queue, *(str(getattr(c, state)) for state in STATES), age(c.oldest_queued_age))
    return table


def limits_table(limits: Sequence[LimitUse]) -> Table:
    """Each limit in force: running / allowed, and the jobs waiting on it."""
    table = _table("limits")
    for column in ("job", "limit", "running", "allowed", "waiting", "keys"):
        table.add_column(column, justify="left" if column in ("job", "limit") else "right")
    for use in limits:
        keys = str(use.keys) if use.kind.endswith("_per_key") else "-"
        table.add_row(
            use.job_name.rpartition(".")[2], use.kind, str(use.running), use.allowed, str(use.waiting), keys
        )
    return table


def workers_table(workers: Sequence[WorkerInfo]) -> Table | str:
    if not workers:
        return "workers: none alive"
    table = _table(f"workers ({len(workers)})")
    for column in ("name", "host", "pid", "state", "queues", "current job", "last heartbeat"):
        table.add_column(column, justify="right" if column == "pid" else "left")
    for w in workers:
        table.add_row(
            w.name,
            w.host,
            str(w.pid or "-"),
            f"not seen for {age(_quiet(w))}" if w.stale else _state(w),
            ",".join(w.queues) or "-",
            w.current_job or "-",
            since(w.last_heartbeat),
        )
    return table


def _state(worker: WorkerInfo) -> str:
    return f"{worker.state}, up to {worker.concurrency} at once" if worker.concurrency > 1 else worker.state


def _quiet(worker: WorkerInfo) -> float | None:
    if worker.last_heartbeat is None:
        return None
    return max(0.0, (datetime.now(timezone.utc) - worker.last_heartbeat).total_seconds())


def stranger_warnings(strangers: Sequence[WorkerInfo]) -> list[str]:
    """One line per live worker on our queues that is not taskq's (a plain `rq worker`)."""
    return [
        f"warning: worker {w.name} (host {w.host}, pid {w.pid or '?'}) serves {','.join(w.queues)} but is "
        "not a taskq worker (a plain `rq worker`?): it runs taskq's jobs without taskq's checks; "
        "stop it (SECURITY.md)"
        for w in strangers
    ]


def failed_table(jobs: Sequence[FailedJob]) -> Table | str:
    if not jobs:
        return "failed jobs: none"
    table = _table(f"failed jobs ({len(jobs)})")
    # Ids are never cut: operators copy them into `failed show` and `failed requeue`.
    table.add_column("id", no_wrap=True, min_width=max(len(job.id) for job in jobs))
    for column in ("queue", "job", "status", "attempts", "ended"):
        table.add_column(column, no_wrap=True)
    # The error's last line, cut (a row or two per job); `taskq failed show ID` has all of it.
    table.add_column("error", overflow="fold", ratio=1)
    for job in jobs:
        table.add_row(
            job.id,
            job.queue,
            job.job_name.rpartition(".")[2],
            job.status,
            str(job.attempts),
            since(job.ended_at),
            cut(job.error or "-", ERROR_CELL),
        )
    return table


def registered_table(rows: Sequence[tuple[str, str, str | None]], params: Mapping[str, str]) -> Table:
    """(name, path, problem or None) per registered job, and its declared params (`taskq jobs`)."""
    table = _table("registered jobs")
    for column in ("name", "path", "params", "resolves here"):
        table.add_column(column, overflow="fold")
    for name, path, problem in rows:
        table.add_row(name, path, params.get(path, "-"), "yes" if problem is None else f"no: {problem}")
    return table


def params_text(params: Mapping[str, str] | None, required: Sequence[str] | None, version: int) -> str:
    """`doc_id: str, n: int = ... (v2)`: what `taskq jobs` shows of a job's declared params."""
    shown = (
        "any"
        if params is None
        else ", ".join(
            f"{name}: {kind}" + ("" if name in (required or ()) else " (optional)")
            for name, kind in params.items()
        )
    )
    return shown if version == 1 else f"{shown} (params version {version})"


def waiting_table(jobs: Sequence[WaitingJob]) -> Table:
    """Jobs handed back by workers that do not know them (`taskq info`, during a rolling deploy)."""
    table = _table(f"waiting for a worker that knows them ({len(jobs)})")
    table.add_column("id", no_wrap=True, min_width=max(len(job.id) for job in jobs))
    for column in ("queue", "job", "version", "status", "waiting"):
        table.add_column(column, no_wrap=True)
    for job in jobs:
        table.add_row(
            job.id,
            job.queue,
            job.job_name,
            str(job.version),
            job.status,
            since(job.since).removesuffix(" ago"),
        )
    return table


def known_table(workers: Sequence[WorkerInfo], registered: Mapping[str, int]) -> Table | None:
    """Which live workers know which jobs (path and params version), when they do not all know the
    same ones as this registry: what a rolling deploy looks like. None when they all agree."""
    known: dict[tuple[str, int], list[str]] = {(path, v): [] for path, v in registered.items()}
    for worker in workers:
        for path, version in worker.jobs.items():
            known.setdefault((path, version), []).append(worker.name)
    if not workers or all(len(names) == len(workers) for names in known.values()):
        return None
    table = _table("jobs the live workers know")
    for column in ("job", "version", "known by"):
        table.add_column(column, overflow="fold")
    for (path, version), names in sorted(known.items()):
        who = f"all ({len(names)})" if len(names) == len(workers) else ", ".join(names) or "no live worker"
        table.add_row(path, str(version), who)
    return table
