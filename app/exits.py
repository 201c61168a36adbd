"""The exit codes of both commands, `taskq` and `python -m app.worker`, and their one-line errors.

One table for both, so that a script, a supervisor or systemd can tell a bad deploy (a job path
that does not import: restarting cannot fix it) from an outage or a typo. Every error either
command reports is one line on stderr, `taskq: <what went wrong>`, never a traceback.
"""

from __future__ import annotations

import signal
import sys
from enum import IntEnum
from typing import Any, NoReturn

import click

PREFIX = "taskq: "


class Exit(IntEnum):
    """How `taskq ...` and `python -m app.worker` end (README of app/cli and app/worker)."""

    OK = 0  # done; the job finished; a worker stopped as asked (SIGTERM, --burst drained)
    ERROR = 1  # one line on stderr: Redis unreachable or refusing, an unknown job or id, a bad setting
    USAGE = 2  # a usage error: an unknown option, a missing or malformed argument
    JOB_DID_NOT_FINISH = 3  # the job failed, was stopped or canceled
    JOB_NOT_DONE = 4  # the job is still queued, scheduled, deferred or started (or a wait timed out)
    BROKEN_JOB_PATH = 5  # a registered job does not import here, or does not take its declared params:
    # fix the deploy, do not restart
    RECYCLED = 6  # `--concurrency N`: a job ignored its timeout; its other jobs were put back: restart it


MEANING = {
    Exit.OK: "ok",
    Exit.ERROR: "an error",
    Exit.USAGE: "a usage error",
    Exit.JOB_DID_NOT_FINISH: "the job did not finish",
    Exit.JOB_NOT_DONE: "the job is not done yet",
    Exit.BROKEN_JOB_PATH: "a registered job path does not import, or does not take its declared params",
    Exit.RECYCLED: "a job ignored its timeout; the worker put its other jobs back and ended",
}


class Fatal(click.ClickException):
    """An error for the user: one line, `taskq: <message>`, and the exit code of the table."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.exit_code = int(code)  # type: ignore[misc]  # click reads it per instance

    def show(self, file: Any = None) -> None:
        click.echo(f"{PREFIX}{self.format_message()}", err=True)


def describe(code: int | None) -> str:
    """A child's exit status in words: `exit 0`, `exit 5: a registered job path ...`, `killed by SIGKILL`."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if code == Exit.OK:
        return "exit 0"
    known = [exit for exit in Exit if exit == code]
    return f"exit {code}: {MEANING[known[0]]}" if known else f"exit {code}"


def run(command: click.Command, prog_name: str) -> NoReturn:
    """Run a click command as a console script: errors as one `taskq:` line, the table's codes."""
    try:
        result = command.main(prog_name=prog_name, standalone_mode=False)
    except click.UsageError as exc:
        if exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
            click.echo(f"Try '{exc.ctx.command_path} -h' for help.", err=True)
        click.echo(f"{PREFIX}{exc.format_message()}", err=True)
        sys.exit(Exit.USAGE)
    except click.Abort:
        click.echo(f"{PREFIX}aborted", err=True)
        sys.exit(Exit.ERROR)
    except click.ClickException as exc:
        click.echo(f"{PREFIX}{exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else Exit.OK)
