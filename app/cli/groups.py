"""`taskq group ID [--watch] [--json]`: a group's (or a chain's) members, done, failed, running and
queued out of total, its outcome and its callbacks; with `--watch`, a live bar until it is over."""

from __future__ import annotations

import time

import click
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from app.cli.common import console, exit_with, json_option, print_json, session, to_jsonable, url_option
from app.cli.render import stamp
from app.exits import Exit
from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.workflow_view import WorkflowView

POLL = 0.25


@click.command()
@click.argument("workflow_id", metavar="ID")
@click.option("--watch", is_flag=True, help="Show a live bar until every member has settled.")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS", help="Stop watching after this.")
@json_option
@url_option
@click.pass_context
def group(
    ctx: click.Context, workflow_id: str, watch: bool, timeout: float | None, as_json: bool, url: str | None
) -> None:
    """Show a group (or a chain: the id of its last job). Exit 0 if it succeeded, 3 if it failed,
    4 while members are still pending."""
    admin = session(ctx).admin
    view = admin.workflow(workflow_id)
    if watch:
        out = console()
        view = follow(admin, view, timeout, out, live=out.is_terminal and not as_json)
    if as_json:
        print_json({**to_jsonable(view), "settled": view.settled, "is_final": view.is_final})
    else:
        console().print(table(view))
    if not view.is_final:
        exit_with(Exit.JOB_NOT_DONE)
    exit_with(Exit.OK if view.state == "succeeded" else Exit.JOB_DID_NOT_FINISH)


def follow(
    admin: QueueAdmin, view: WorkflowView, timeout: float | None, out: Console, live: bool
) -> WorkflowView:
    """Poll until every member has settled (or `timeout`); with `live`, a bar of settled / total."""
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = Progress(
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=out,
        disable=not live,
    )
    pause = POLL
    with bar:
        task = bar.add_task(view.id, total=view.total, counts="")
        while True:
            bar.update(
                task, completed=view.settled, description=f"{view.id} {view.state}", counts=counts(view)
            )
            if view.is_final or (deadline is not None and time.monotonic() > deadline):
                bar.stop_task(task)
                return view
            time.sleep(pause)
            started = time.monotonic()
            view = admin.workflow(view.id)
            pause = max(POLL, 10 * (time.monotonic() - started))  # a big group: Redis 10% busy at most


def counts(view: WorkflowView) -> str:
    failed = view.failed + view.canceled + view.expired
    return f"done {view.finished} failed {failed} running {view.running} queued {view.queued}"


def table(view: WorkflowView) -> Table:
    grid = Table(box=box.SIMPLE, show_header=False, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    rows = [
        ("id", view.id),
        ("kind", view.kind),
        ("state", view.state + ("" if view.closed else " (members pending)")),
        ("total", str(view.total)),
        ("done", str(view.finished)),
        ("failed", f"{view.failed} failed, {view.canceled} canceled, {view.expired} expired"),
        ("ignored", str(view.ignored)),
        ("running", str(view.running)),
        ("queued", str(view.queued)),
        ("created", stamp(view.created_at)),
        ("decided", stamp(view.ended_at)),
    ]
    if view.parent:
        rows.append(("in group", view.parent))
    for role, (job_id, status) in view.callbacks.items():
        rows.append((role, f"{job_id} {status or 'gone'}"))
    if view.first_failure:
        rows.append(("failed by", view.first_failure))
    listed = list(view.failures.items())[:10]
    for job_id, status in listed:
        rows.append(("failure", f"{job_id} {status}"))
    if len(view.failures) > len(listed) or view.truncated:
        rows.append(("", "more failures or results than are listed (counted above)"))
    for name, value in rows:
        grid.add_row(name, value)
    return grid
