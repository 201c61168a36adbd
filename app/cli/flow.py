"""`taskq pause QUEUE`, `taskq resume QUEUE`, `taskq schedules`: time and flow control."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click
from rich import box
from rich.table import Table

from app.cli.common import CliError, console, json_option, print_json, session, url_option
from app.cli.render import since, stamp
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.schedule_store import ScheduleState
from app.infrastructure.queue.schedules import Schedule
from app.worker.scheduler import load


@click.command()
@click.argument("queue")
@url_option
@click.pass_context
def pause(ctx: click.Context, queue: str, url: str | None) -> None:
    """Stop every worker from claiming jobs of QUEUE (durable; enqueueing goes on)."""
    session(ctx).queue.pause(queue)
    click.echo(f"paused {queue}: no worker claims from it until `taskq resume {queue}`")


@click.command()
@click.argument("queue")
@url_option
@click.pass_context
def resume(ctx: click.Context, queue: str, url: str | None) -> None:
    """Let workers claim jobs of QUEUE again."""
    session(ctx).queue.resume(queue)
    click.echo(f"resumed {queue}")


@click.command()
@json_option
@url_option
@click.pass_context
def schedules(ctx: click.Context, as_json: bool, url: str | None) -> None:
    """The schedules (QUEUE_SCHEDULES_MODULE): rule, next and last tick, last job, skipped, missed."""
    state = session(ctx)
    try:
        declared = load(state.settings.schedules_module, state.registry)
    except QueueError as exc:
        raise CliError(str(exc)) from None
    store = state.services.schedule_store()
    now = store.clock()
    rows = [
        _row(schedule, found, now)
        for schedule, found in zip(declared, store.states(declared).values(), strict=True)
    ]
    if as_json:
        print_json(rows)
    else:
        console().print(_table(rows))


def _row(schedule: Schedule, state: ScheduleState, now: float) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "job": schedule.job_name,
        "rule": schedule.rule,
        "next_tick": _iso(schedule.next_after(now)),
        "last_tick": _iso(state.last_tick) if state.last_tick is not None and state.last_tick >= 0 else None,
        "last_job_id": state.last_job,
        "last_job_status": state.last_job_status,
        "enqueued": state.enqueued,
        "skipped": state.skipped,
        "missed": state.missed,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat()


def _table(rows: list[dict[str, Any]]) -> Table | str:
    if not rows:
        return "no schedules (QUEUE_SCHEDULES_MODULE has an empty SCHEDULES)"
    table = Table(box=box.SIMPLE, title="schedules", title_justify="left")
    for column in (
        "name",
        "job",
        "rule",
        "next tick",
        "last tick",
        "last job",
        "status",
        "skipped",
        "missed",
    ):
        table.add_column(column, justify="right" if column in ("skipped", "missed") else "left")
    for row in rows:
        last = datetime.fromisoformat(row["last_tick"]) if row["last_tick"] else None
        when = stamp(datetime.fromisoformat(row["next_tick"]))
        job = row["job"].rpartition(".")[2]
        status = row["last_job_status"] or "-"
        counts = (str(row["skipped"]), str(row["missed"]))
        table.add_row(
            row["name"], job, row["rule"], when, since(last), row["last_job_id"] or "-", status, *counts
        )
    return table
