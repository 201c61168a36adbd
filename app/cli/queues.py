"""`taskq info` and `taskq failed list|show|requeue|purge`: across the queues."""

from __future__ import annotations

import click

from app.cli import render
from app.cli.common import CliError, console, json_option, print_json, session, to_jsonable, url_option
from app.infrastructure.queue.admin import as_json as admin_json
from app.infrastructure.queue.keys import check_queue_name


def _queues(queue: tuple[str, ...]) -> list[str] | None:
    return [check_queue_name(name) for name in queue] or None


queue_option = click.option(
    "--queue", "-q", multiple=True, metavar="NAME", help="Only this queue (repeatable) [default: all]."
)


@click.command()
@json_option
@url_option
@click.pass_context
def info(ctx: click.Context, as_json: bool, url: str | None) -> None:
    """Per queue, how many jobs are in each state; paused queues; limits; the live workers (and
    any that is not taskq's); jobs waiting for a worker that knows them, and which workers know
    which jobs when they differ (a rolling deploy)."""
    state = session(ctx)
    admin = state.admin
    counts, workers, limits = admin.counts(), admin.workers(), admin.limits()
    waiting, strangers, suspended = admin.waiting(), admin.strangers(workers), admin.suspended()
    paused = [c.queue for c in counts if c.paused]
    if as_json:
        print_json(
            {
                "suspended": suspended,
                "queues": [admin_json(c) for c in counts],
                "workers": [admin_json(w) for w in workers],
                "paused": paused,
                "limits": [admin_json(use) for use in limits],
                "waiting_for_worker": [admin_json(job) for job in waiting],
            }
        )
        return
    out = console()
    if suspended:
        out.print("suspended: workers take no jobs (rq suspend); `rq resume` lets them go on")
    out.print(render.counts_table(counts))
    if paused:
        out.print(f"paused (no worker claims from them; `taskq resume QUEUE`): {', '.join(paused)}")
    if limits:
        out.print(render.limits_table(limits))
    out.print(render.workers_table(workers))
    if waiting:
        out.print(render.waiting_table(waiting))
    known = render.known_table(workers, {path: state.registry.version(path) for _, path in state.registry})
    if known is not None:
        out.print(known)
    for line in render.stranger_warnings(strangers):
        click.echo(line, err=True)


@click.group()
def failed() -> None:
    """Jobs that failed for good (or were stopped): list, show, requeue, purge."""


@failed.command("list")
@queue_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@url_option
@click.pass_context
def list_failed(
    ctx: click.Context, queue: tuple[str, ...], limit: int, as_json: bool, url: str | None
) -> None:
    """The newest failed jobs, with the last line of their error."""
    jobs = session(ctx).admin.failed(_queues(queue), limit)
    if as_json:
        print_json([admin_json(job) for job in jobs])
    else:
        console().print(render.failed_table(jobs))


@failed.command()
@click.argument("job_id")
@json_option
@url_option
@click.pass_context
def show(ctx: click.Context, job_id: str, as_json: bool, url: str | None) -> None:
    """A failed job, with its whole traceback."""
    state = session(ctx)
    view = state.queue.get(job_id)
    trace = state.admin.traceback(job_id)
    if as_json:
        print_json({**to_jsonable(view), "traceback": trace})
        return
    out = console()
    out.print(render.job_table(view))
    if trace:
        out.print(trace.rstrip(), markup=False, highlight=False)


@failed.command()
@click.argument("job_ids", nargs=-1, metavar="[JOB_ID]...")
@click.option("--all", "every", is_flag=True, help="Every failed job (of --queue, if given).")
@click.option(
    "--as", "as_name", metavar="NEW_JOB_NAME", help="Run them as this registered job (after a rename)."
)
@queue_option
@url_option
@click.pass_context
def requeue(
    ctx: click.Context,
    job_ids: tuple[str, ...],
    every: bool,
    as_name: str | None,
    queue: tuple[str, ...],
    url: str | None,
) -> None:
    """Put failed jobs back in their queue, with their retries reset (and renamed, with --as)."""
    if bool(job_ids) == every:
        raise CliError("give job ids, or --all (not both)")
    state = session(ctx)
    if as_name is not None:
        if every:
            raise CliError("--as renames the jobs you name: give their ids, not --all")
        path = state.registry.resolve(as_name)
        for job_id in job_ids:
            click.echo(f"requeued {job_id} on queue {state.admin.requeue(job_id, as_job=path)} as {path}")
        return
    admin = state.admin
    if every:
        done = admin.requeue_all(_queues(queue))
        click.echo(f"requeued {len(done)} failed job{'s' * (len(done) != 1)}")
        return
    for job_id in job_ids:
        click.echo(f"requeued {job_id} on queue {admin.requeue(job_id)}")


@failed.command()
@queue_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@url_option
@click.pass_context
def purge(ctx: click.Context, queue: tuple[str, ...], yes: bool, url: str | None) -> None:
    """Delete failed jobs for good, with their results and errors."""
    admin = session(ctx).admin
    names = _queues(queue)
    if not yes:
        count = len(admin.failed_ids(names))
        click.confirm(f"delete {count} failed job{'s' * (count != 1)} for good?", abort=True)
    deleted = admin.purge(names)
    click.echo(f"purged {deleted} failed job{'s' * (deleted != 1)}")
