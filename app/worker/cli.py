"""`python -m app.worker` (and `taskq worker`): a worker process, built by `app.bootstrap`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click

from app import logs
from app.bootstrap import Services, bootstrap, default_settings
from app.config import WORKER_MODES, Settings
from app.exits import Exit, Fatal
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.redis.locality import signing_warning
from app.worker import testing
from app.worker.events import WorkerEvents
from app.worker.preflight import check_params, resolve_jobs
from app.worker.supervisor import Supervisor

log = logging.getLogger("taskq.worker")


@click.command(name="worker", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--queues", "-q", help="Comma-separated queues, highest priority first [default: QUEUE_NAMES].")
@click.option("--burst", is_flag=True, help="Run until the queues are empty, then exit.")
@click.option(
    "--processes",
    "-n",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker processes to run; dead ones are restarted.",
)
@click.option(
    "--mode",
    type=click.Choice(list(WORKER_MODES)),
    help="fork: a process per job (default); pool: reused processes (faster); inline: no isolation.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    help="Run up to N jobs at once in each process, on an asyncio loop (async def jobs on the loop, "
    "plain def jobs on a thread pool of N).",
)
@click.option("--max-jobs", type=click.IntRange(1), help="Exit after this many jobs.")
@click.option("--name", help="Worker name (default: host.pid.random).")
@click.option("--url", help="Redis URL [default: REDIS_URL].")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics on this port (with --processes N: this port and the N-1 after it).",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address for --metrics-port.")
@click.option(
    "--no-scheduler", "no_scheduler", is_flag=True, help="Do not fire the schedules (another worker does)."
)
@click.option("--supervised", is_flag=True, hidden=True, help="Started by a supervisor (which warned).")
def worker_command(
    queues: str | None,
    burst: bool,
    processes: int,
    mode: str | None,
    concurrency: int | None,
    max_jobs: int | None,
    name: str | None,
    url: str | None,
    metrics_port: int | None,
    metrics_host: str,
    no_scheduler: bool = False,
    supervised: bool = False,
) -> None:
    """Run background jobs from the queues until SIGTERM (which finishes the current job first)."""
    if concurrency is not None and mode is not None:
        raise click.UsageError("--concurrency runs jobs on an asyncio loop: it takes no --mode")
    settings = _settings(url)
    logs.configure(settings.log_level, settings.log_format)
    if not supervised:
        warn_if_unsigned(settings)
        warn_about_strangers(settings)
    if processes > 1:
        args = _passthrough(queues, burst, mode, max_jobs, url) + (["--no-scheduler"] if no_scheduler else [])
        args += ["--concurrency", str(concurrency)] if concurrency is not None else []
        sys.exit(Supervisor(processes, args, _metrics_args(metrics_port, metrics_host)).run())
    queue_names = [q.strip() for q in queues.split(",")] if queues else None
    announce_folders(settings)
    services = bootstrap(settings)
    functions = _preflight(services)
    try:
        events = _metrics(metrics_port, metrics_host, settings)
        worker = services.worker(
            functions,
            queue_names,
            name=name,
            mode=mode,
            events=events,
            schedules=not no_scheduler,
            concurrency=concurrency,
        )
        testing.install(worker)
        # Refused (a wrong password, an ACL without a command it needs; with --burst, Redis down
        # too long): one line, no traceback.
        worker.work(burst=burst, max_jobs=max_jobs)
    except QueueError as exc:
        raise Fatal(str(exc)) from None


def _settings(url: str | None) -> Settings:
    try:
        settings = default_settings()
    except QueueError as exc:
        raise Fatal(str(exc)) from None
    return replace(settings, redis_url=url) if url else settings


def _preflight(services: Services) -> dict[str, Callable[..., Any]]:
    """Every registered job imported, and its signature checked against its declared params, before
    any job is taken; a broken path or a mismatch stops the worker, one line per job.

    It exits `Exit.BROKEN_JOB_PATH` (5): a deploy error, which a supervisor must not restart.
    """
    functions, problems = resolve_jobs(services.registry)
    lines = [f"broken job path: {line}" for line in problems]
    lines += [f"job params do not fit: {line}" for line in check_params(services.registry, functions)]
    if lines:
        for line in lines[:-1]:
            Fatal(line).show()
        raise Fatal(lines[-1], Exit.BROKEN_JOB_PATH)
    return functions


def announce_folders(settings: Settings) -> None:
    """Say at start where `ingest_doc` reads and writes: absolute, whatever the current directory."""
    log.info(
        "documents from DOCUMENTS_DIR=%s, chunks to INGESTED_DIR=%s",
        settings.documents_dir,
        settings.ingested_dir,
    )
    if not settings.documents_dir.is_dir():
        log.warning(
            "DOCUMENTS_DIR=%s is not a folder: ingest_doc will fail every job", settings.documents_dir
        )


def warn_about_strangers(settings: Settings) -> None:
    """Log, once per worker command, every plain rq worker that serves our queues (best effort)."""
    try:
        # One try, no retries: a Redis that is down must not delay the start (nor its SIGTERM).
        strangers = Services(replace(settings, redis_retry_seconds=0)).admin.strangers()
    except QueueError:
        return  # Redis not there yet: the worker rides that out and says so itself
    for w in strangers:
        log.warning(
            "worker %s (host %s, pid %s) serves %s but is not a taskq worker (a plain `rq worker`?): "
            "it runs taskq's jobs without taskq's checks; stop it (SECURITY.md)",
            w.name,
            w.host,
            w.pid,
            ",".join(w.queues),
        )


def warn_if_unsigned(settings: Settings) -> None:
    """Log the start warning once per worker command (a supervisor's workers do not repeat it)."""
    warning = signing_warning(settings)
    if warning:
        log.warning(warning)


def _passthrough(
    queues: str | None, burst: bool, mode: str | None, max_jobs: int | None, url: str | None
) -> list[str]:
    args: list[str] = []
    for flag, value in (("--queues", queues), ("--mode", mode), ("--url", url)):
        if value:
            args += [flag, value]
    if max_jobs:
        args += ["--max-jobs", str(max_jobs)]
    if burst:
        args.append("--burst")
    return args


def _metrics(port: int | None, host: str, settings: Settings) -> list[WorkerEvents]:
    """The metrics observer, its HTTP server started; none without `--metrics-port`."""
    if port is None:
        return []
    from app.worker import metrics  # only now: a worker without metrics never imports the client

    admin = Services(settings).admin  # its own client: scrapes come from another thread
    try:
        return [metrics.serve(port, host, admin)]
    except OSError as exc:
        raise Fatal(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None


def _metrics_args(port: int | None, host: str) -> Callable[[int], list[str]] | None:
    """Under `--processes N`, worker slot k serves its metrics on `port + k`: one port per process."""
    if port is None:
        return None
    return lambda slot: ["--metrics-port", str(port + slot), "--metrics-host", host]
