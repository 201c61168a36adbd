"""`taskq dashboard`: rq-dashboard (the `dashboard` extra) on our Redis, on loopback by default.

We do not write a dashboard: rq-dashboard reads rq's data model, which is ours. It is a Flask
development server; put it behind your own proxy and authentication before exposing it.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from app.cli.common import CliError, session, url_option
from app.config import redact_url
from app.infrastructure.queue.schema import Field
from app.infrastructure.queue.serialization import Serializer, loads_job_data, make_serializer


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9181, show_default=True, type=click.IntRange(1, 65535))
@click.option("--poll-interval", default=2500, show_default=True, metavar="MS", help="Page refresh.")
@url_option
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, poll_interval: int, url: str | None) -> None:
    """Serve rq-dashboard for our queues, workers and failed jobs (needs the `dashboard` extra)."""
    settings = session(ctx).settings
    serializer = make_serializer(settings.serializer, settings.signing_key, settings.old_signing_keys)
    app = build_app(settings.redis_url, serializer, poll_interval=poll_interval)
    click.echo(f"rq-dashboard for {redact_url(settings.redis_url)} on http://{host}:{port}/", err=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host=host, port=port, debug=False, use_reloader=False)


def build_app(redis_url: str, serializer: Serializer, *, poll_interval: int) -> Any:
    """The rq-dashboard Flask app for `redis_url`, reading jobs with our `serializer`.

    Our serializer, not rq's default: with QUEUE_SIGNING_KEY every result and meta is signed, and
    plain rq-dashboard fails (HTTP 500) on any page that loads one (finished jobs, a job's page).

    Raises:
        CliError: rq-dashboard is not installed.
    """
    try:
        from rq_dashboard.cli import make_flask_app
        from rq_dashboard.web import config, setup_rq_connection
    except ImportError as exc:
        raise CliError(
            f"rq-dashboard is not installed ({exc.name}): pip install 'taskq[dashboard]'"
        ) from None
    _check_job_data_tags(serializer)
    app = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    app.config["RQ_DASHBOARD_POLL_INTERVAL"] = poll_interval
    app.config["DEPRECATED_OPTIONS"] = []
    config.serializer = serializer
    setup_rq_connection(app)
    return app


def _check_job_data_tags(serializer: Serializer) -> None:
    """Teach rq's `Job` (in this process only) where a signed job's tag is.

    With signing, a job's data carries its tag in the `taskq_sig` field rather than inside the
    data (it keeps small job hashes compact); rq does not know that field. Without this, the
    dashboard could not show a signed job's call, and it never unpickles data it has not checked.
    """
    from rq.exceptions import DeserializationError
    from rq.job import Job

    original = Job._deserialize_data
    if getattr(original, "taskq", False):
        return

    def deserialize(job: Job) -> None:
        tag = job.connection.hget(job.key, Field.SIGNATURE)
        if not isinstance(tag, bytes):
            original(job)  # type: ignore[no-untyped-call]  # signed inside the data, or not signed
            return
        try:
            job._func_name, job._instance, job._args, job._kwargs = loads_job_data(serializer, job.data, tag)
        except Exception as exc:  # rq's own wording for data it cannot read
            raise DeserializationError(f"job {job.id}: {exc}") from exc

    deserialize.taskq = True  # type: ignore[attr-defined]
    Job._deserialize_data = deserialize  # type: ignore[method-assign]
