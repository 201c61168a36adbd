"""Drain the queues with a real worker in this process (inline mode): for fast contract tests."""

from __future__ import annotations

import signal

import redis

from app.bootstrap import bootstrap
from app.config import Settings
from app.worker.preflight import resolve_jobs


def drain(settings: Settings, connection: redis.Redis) -> None:
    """Run every runnable job to its end with the production worker loop, then return."""
    services = bootstrap(settings, connection=connection)
    functions, problems = resolve_jobs(services.registry)
    assert not problems, problems
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    try:
        services.worker(functions, mode="inline").work(burst=True)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
