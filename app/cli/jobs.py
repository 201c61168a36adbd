"""`taskq jobs`, `enqueue`, `status`, `cancel`, `stop`: one job at a time."""

from __future__ import annotations

import json
from typing import Any

import click

from app.cli import render
from app.cli.common import (
    console,
    exit_with,
    json_option,
    print_json,
    session,
    to_jsonable,
    url_option,
)
from app.cli.watch import follow
from app.exits import Exit
from app.infrastructure.queue.errors import JobImportError, WaitTimeoutError
from app.infrastructure.queue.import_utils import import_callable
from app.infrastructure.queue.job_params import ParamsSchema
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.port import JobStatus, JobView


@click.command()
@json_option
@click.pass_context
def jobs(ctx: click.Context, as_json: bool) -> None:
    """The registered jobs, their import paths, their declared params, and whether each imports here."""
    registry = session(ctx).registry
    rows = [(name, path, _problem(path)) for name, path in registry]
    declared = {path: _declared(registry, path) for _, path, _ in rows}
    if as_json:
        print_json(
            [{"name": n, "path": p, **declared[p], "resolves": e is None, "problem": e} for n, p, e in rows]
        )
    else:
        shown = {path: render.params_text(**about) for path, about in declared.items()}
        console().print(render.registered_table(rows, shown))
    exit_with(Exit.OK if all(problem is None for _, _, problem in rows) else Exit.BROKEN_JOB_PATH)


def _declared(registry: JobRegistry, path: str) -> dict[str, Any]:
    """The params a job declares ({field: type}, None when it declares none) and their version."""
    declared = registry.declared(path)
    fields = {n: getattr(t, "__name__", str(t)) for n, t in declared.fields.items()} if declared else None
    return {
        "params": fields,
        "required": sorted(declared.required) if declared else None,
        "version": registry.version(path),
    }


def _problem(path: str) -> str | None:
    try:
        import_callable(path)
    except JobImportError as exc:
        return str(exc)
    return None


@click.command()
@click.argument("name")
@click.argument("params", nargs=-1, metavar="[KEY=VALUE | KEY:=JSON]...")
@click.option(
    "--priority", type=click.Choice(["high", "default", "low"]), default="default", show_default=True
)
@click.option("--delay", type=click.FloatRange(min=0), metavar="SECONDS", help="Start that much later.")
@click.option("--job-id", help="Your id for the job: the idempotency key.")
@click.option("--wait", is_flag=True, help="Wait for the job to end; exit as `taskq status` does.")
@click.option("--require-worker", is_flag=True, help="Refuse it unless a live worker knows the job.")
@click.option(
    "--timeout", type=click.FloatRange(min=0), metavar="SECONDS", help="Give up waiting after this."
)
@json_option
@url_option
@click.pass_context
def enqueue(
    ctx: click.Context,
    name: str,
    params: tuple[str, ...],
    priority: str,
    delay: float | None,
    job_id: str | None,
    wait: bool,
    require_worker: bool,
    timeout: float | None,
    as_json: bool,
    url: str | None,
) -> None:
    """Enqueue job NAME with params: KEY=VALUE is a string, KEY:=JSON is JSON (as in HTTPie).

    Prints the job id. `taskq enqueue ingest_doc doc_id=123` sends the string "123"; a job that
    declares its params gets text values in their declared types (`n=3` is 3 for an int field);
    `tags:='["a", "b"]'` sends a list.
    """
    state = session(ctx)
    declared = state.registry.declared(state.registry.resolve(name))
    new_id = state.queue.enqueue(
        name,
        parse_params(params, declared),
        priority=priority,  # type: ignore[arg-type]  # click.Choice checked it
        delay=delay,
        job_id=job_id,
        require_worker=require_worker,
    )
    if as_json and not wait:
        print_json({"job_id": new_id})
    elif not as_json:
        click.echo(new_id)  # first, so a script or a person has the id while it waits
    if wait:
        _finish(ctx, new_id, timeout, as_json)


def parse_params(items: tuple[str, ...], declared: ParamsSchema | None = None) -> dict[str, Any]:
    """`key=value` (always a string) and `key:=json` pairs, HTTPie's convention; with `declared`
    params, the strings of declared fields become their types where they parse.

    A key given twice is refused: which of the two was meant cannot be guessed.
    """
    params: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for item in items:
        head, sep, raw = item.partition("=")
        as_json = head.endswith(":")
        key = head[:-1] if as_json else head
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE or KEY:=JSON, got {item!r}", param_hint="params")
        if key in params:
            raise click.BadParameter(f"{key!r} is given twice; give each key once", param_hint="params")
        if not as_json:
            texts[key] = params[key] = raw
            continue
        try:
            params[key] = json.loads(raw)
        except ValueError as exc:
            raise click.BadParameter(
                f"{item!r}: the value after := is not JSON ({exc})", param_hint="params"
            ) from None
        texts.pop(key, None)
    if declared is not None:
        params.update(declared.coerce(texts))
    return params


@click.command()
@click.argument("job_id")
@click.option("--watch", is_flag=True, help="Show a live progress bar until the job ends.")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS", help="Stop watching after this.")
@json_option
@url_option
@click.pass_context
def status(
    ctx: click.Context, job_id: str, watch: bool, timeout: float | None, as_json: bool, url: str | None
) -> None:
    """Show a job. Exit 0 if it finished, 3 if it failed, was stopped or canceled, 4 if not done yet."""
    if not watch:
        _show(session(ctx).queue.get(job_id), as_json)
        return
    _finish(ctx, job_id, timeout, as_json)


def _finish(ctx: click.Context, job_id: str, timeout: float | None, as_json: bool) -> None:
    """Follow the job to its end (a live bar on a terminal), show it, exit as `status` does."""
    queue = session(ctx).queue
    out = console()
    try:
        view = follow(queue, job_id, timeout, out, live=out.is_terminal and not as_json)
    except WaitTimeoutError as exc:
        click.echo(f"taskq: {exc}", err=True)
        _show(queue.get(job_id), as_json)
        return
    _show(view, as_json)


def _show(view: JobView, as_json: bool) -> None:
    if as_json:
        print_json(to_jsonable(view))
    else:
        console().print(render.job_table(view))
    if view.status is JobStatus.FINISHED:
        exit_with(Exit.OK)
    exit_with(Exit.JOB_DID_NOT_FINISH if view.is_final else Exit.JOB_NOT_DONE)


@click.command()
@click.argument("job_id")
@url_option
@click.pass_context
def cancel(ctx: click.Context, job_id: str, url: str | None) -> None:
    """Cancel a queued, scheduled or deferred job (and the jobs that depend on it)."""
    session(ctx).queue.cancel(job_id)
    click.echo(f"canceled {job_id}")


@click.command()
@click.argument("job_id")
@url_option
@click.pass_context
def stop(ctx: click.Context, job_id: str, url: str | None) -> None:
    """Stop a running job: its worker kills it; it ends `stopped`, without retries."""
    queue = session(ctx).queue
    queue.stop(job_id)
    worker = queue.get(job_id).worker
    click.echo(f"asked worker {worker} to stop {job_id}")
