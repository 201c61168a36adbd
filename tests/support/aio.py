"""`AsyncRQQueue` with a sync face, for the contract suite: each call runs to completion on one loop."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from app.bootstrap import bootstrap_async
from app.config import Settings
from app.infrastructure.queue.job_paths import JobRegistry


class SyncQueue:
    """Forwards every method of an `AsyncRQQueue`; coroutine methods are run on `loop` and awaited."""

    def __init__(self, queue: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._queue, self._loop = queue, loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._queue, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(attr(*args, **kwargs))

        return call


class AsyncHarnessLoop:
    """One event loop for one test; its queues' clients are closed with it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._services: list[Any] = []

    def sync_queue(self, settings: Settings, registry: JobRegistry | None = None) -> SyncQueue:
        services = bootstrap_async(settings)
        if registry is not None:
            services.__dict__["registry"] = registry  # the producer's registry of the case
        self._services.append(services)
        return SyncQueue(services.queue, self.loop)

    def close(self) -> None:
        for services in self._services:
            self.loop.run_until_complete(services.aclose())
        self.loop.close()
