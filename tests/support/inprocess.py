"""Drain the queues with a real worker in this process (inline mode): for fast contract tests."""

from __future__ import annotations

import signal

import redis

from app.config import Settings
from app.infrastructure.queue.job_paths import JobRegistry
from app.worker.preflight import resolve_jobs
from app.worker.worker import Worker


def drain(settings: Settings, connection: redis.Redis) -> None:
    """Run every runnable job to its end with the production worker loop, then return."""
    registry = JobRegistry(extra=settings.extra_jobs)
    functions, problems = resolve_jobs(registry)
    assert not problems, problems
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    try:
        worker = Worker(connection, settings, registry, functions, settings.queue_names, mode="inline")
        worker.work(burst=True)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
