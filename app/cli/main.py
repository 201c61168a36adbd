"""`taskq`: see and steer the queues from a shell. The console script's entry point is `main`.

Every error a user can cause (a bad name, an unknown id, Redis down, a bad setting) ends as one
line on stderr and a non-zero exit, never a traceback: `TaskqGroup.invoke` translates them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import redis

from app.cli import dashboard, flow, groups, jobs, queues
from app.cli.common import CliError, Session, url_option
from app.exits import run
from app.infrastructure.queue.errors import QueueError, UnknownJobError
from app.infrastructure.redis.connection import describe, translate
from app.worker.cli import worker_command


class TaskqGroup(click.Group):
    """A click group whose commands' errors become `taskq: <one line>` and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UnknownJobError as exc:
            raise CliError(_unknown_job(ctx, exc)) from None
        except QueueError as exc:
            raise CliError(str(exc)) from None
        except redis.exceptions.RedisError as exc:  # anything a client call raised untranslated
            state = ctx.obj if isinstance(ctx.obj, Session) else Session()
            where = describe(state.connection) if "connection" in state.__dict__ else "Redis"
            raise CliError(str(translate(exc, where))) from None


def _unknown_job(ctx: click.Context, exc: UnknownJobError) -> str:
    """The error with the closest registered *short* names: what the user types here."""
    state = ctx.obj if isinstance(ctx.obj, Session) else Session()
    names = {path: name for name, path in state.registry}
    close = [names.get(path, path) for path in exc.suggestions]
    hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
    return f"unknown job {exc.job_name!r}{hint} (`taskq jobs` lists the registered jobs)"


@click.group(cls=TaskqGroup, context_settings={"help_option_names": ["-h", "--help"]})
@url_option
@click.pass_context
def cli(ctx: click.Context, url: str | None) -> None:
    """See and steer the taskq queues: jobs, workers, failures. Reads REDIS_URL and QUEUE_*."""
    ctx.obj = Session(url=url)


@cli.command()
def demo() -> None:
    """The main flow end to end: a worker, ingest_doc for every shipped document, a table."""
    from app import demo as demo_module

    sys.exit(demo_module.main())


for command in (
    jobs.jobs,
    jobs.enqueue,
    jobs.status,
    jobs.cancel,
    jobs.stop,
    queues.info,
    queues.failed,
    flow.pause,
    flow.resume,
    flow.schedules,
    groups.group,
):
    cli.add_command(command)
cli.add_command(worker_command, "worker")
cli.add_command(dashboard.dashboard)


def main() -> None:
    """The `taskq` console script.

    Like `python -m`, it puts the current directory first on `sys.path` (unless PYTHONSAFEPATH is
    set): `taskq worker` and `taskq jobs` find job modules exactly where `python -m app.worker` does.
    """
    here = os.getcwd()
    if not sys.flags.safe_path and not os.environ.get("PYTHONSAFEPATH") and here not in sys.path:
        sys.path.insert(0, here)
    run(cli, "taskq")


if __name__ == "__main__":  # `python -m app.cli.main`, as the console script
    main()
