"""What every `taskq` command shares: settings and clients built once, options, output, errors.

Nothing connects at import time; a command asks `Session` for the queue or the admin it needs.
Every message goes through here, so no secret (the password in REDIS_URL, the signing key) can
reach the terminal.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any, TypeVar

import click
import redis
from rich.console import Console

from app.bootstrap import Services, default_settings
from app.config import Settings
from app.exits import Fatal
from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.rq_queue import RQQueue

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Fatal):
    """A user-facing error: one line on stderr, `taskq: <message>`, exit 1, never a traceback.

    The exit codes are `app.exits.Exit`, shared with `python -m app.worker`.
    """


@dataclass
class Session:
    """Per invocation: settings from the environment (and `--url`), and the clients, made lazily."""

    url: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                settings = default_settings()
            except QueueError as exc:
                raise CliError(str(exc)) from None
            self._settings = replace(settings, redis_url=self.url) if self.url else settings
        return self._settings

    @cached_property
    def services(self) -> Services:
        return Services(self.settings)

    @cached_property
    def connection(self) -> redis.Redis:
        try:
            return self.services.connection
        except QueueError as exc:
            raise CliError(str(exc)) from None

    @cached_property
    def queue(self) -> RQQueue:
        self.connection  # noqa: B018 - a bad URL is a CliError here, before the queue is built
        return self.services.queue

    @cached_property
    def admin(self) -> QueueAdmin:
        self.connection  # noqa: B018 - as `queue`
        return self.services.admin

    @cached_property
    def registry(self) -> JobRegistry:
        try:
            return self.services.registry
        except QueueError as exc:
            raise CliError(str(exc)) from None


def session(ctx: click.Context) -> Session:
    """The invocation's session; a command's own `--url` wins over the group's."""
    root = ctx.find_root()
    if not isinstance(root.obj, Session):
        root.obj = Session()
    url = ctx.params.get("url")
    if url:
        root.obj.url = url
    return root.obj


def url_option(func: F) -> F:
    return click.option("--url", metavar="URL", help="Redis URL [default: REDIS_URL].")(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")(func)


def console() -> Console:
    """Rich output on stdout; plain text (no colors, no cursor moves) when it is not a terminal."""
    return Console(highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))


def to_jsonable(value: Any) -> Any:
    """Dataclasses (a `JobView`, a `QueueCounts`), enums and times as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return _json_default(value) if isinstance(value, Enum | datetime) else value


def _json_default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def exit_with(code: int) -> None:
    sys.exit(code)
