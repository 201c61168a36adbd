"""The composition root: every part of taskq built from one `Settings`, in one place.

`Settings.from_env()` is read here and nowhere else. The application, the worker, the CLI and
the demo ask `bootstrap(settings)` for what they need; nothing connects at import time, and a
part is built the first time it is asked for.

    services = bootstrap()                 # the environment's settings (REDIS_URL, QUEUE_*, ...)
    job_id = services.queue.enqueue(job_name=INGEST_DOC_JOB, params={"doc_id": "123"})
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

import redis
import redis.asyncio as aioredis

from app.config import ConfigError, Settings
from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.async_queue import AsyncRQQueue
from app.infrastructure.queue.directory import WorkerDirectory
from app.infrastructure.queue.job_paths import LIMITS, JobRegistry
from app.infrastructure.queue.job_spec import JobSpecBuilder
from app.infrastructure.queue.keys import check_queue_name
from app.infrastructure.queue.limits import merged, script_argument
from app.infrastructure.queue.memory_queue import InMemoryQueue
from app.infrastructure.queue.presence import WorkerPresence
from app.infrastructure.queue.progress import ProgressWriter
from app.infrastructure.queue.reaper import Reaper
from app.infrastructure.queue.redis_store import RedisJobStore
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.schedule_store import ScheduleStore
from app.infrastructure.queue.serialization import Serializer, make_serializer
from app.infrastructure.redis.async_connection import connect_async
from app.infrastructure.redis.connection import connect
from app.worker.events import WorkerEvents
from app.worker.execution import JobRunner
from app.worker.scheduler import Scheduler
from app.worker.scheduler import load as load_schedules
from app.worker.worker import WORKER_TTL, Worker


def default_settings() -> Settings:
    """The settings in the environment (`Settings.from_env()`): the one place they are read.

    Raises:
        ConfigError: a variable holds a value we cannot use; the message names it.
    """
    return Settings.from_env()


def registry_for(settings: Settings) -> JobRegistry:
    """The registry of jobs: `job_paths.JOBS` plus `QUEUE_EXTRA_JOBS`."""
    return JobRegistry(extra=settings.extra_jobs)


def limits_for(settings: Settings, registry: JobRegistry) -> str:
    """The claim script's limits (`job_paths.LIMITS` and `QUEUE_LIMITS`), by registered job path.

    Raises:
        ConfigError: a limit names a job that is not registered.
    """
    limits = merged(LIMITS, settings.limits)
    for name in limits:
        if not registry.is_registered(name) and name not in dict(registry):
            raise ConfigError("QUEUE_LIMITS", name, "names no registered job (`taskq jobs` lists them)")
    return script_argument(limits, registry)


def serializer_for(settings: Settings) -> Serializer:
    """`QUEUE_SERIALIZER`, signed with `QUEUE_SIGNING_KEY` (and `QUEUE_SIGNING_KEYS_OLD`) if set."""
    return make_serializer(settings.serializer, settings.signing_key, settings.old_signing_keys)


class _Parts:
    """What every set of parts has: one `Settings`, its registry and serializer, a client given."""

    def __init__(self, settings: Settings, connection: object | None = None) -> None:
        self.settings = settings
        if connection is not None:
            self.__dict__["connection"] = connection  # the cached property's slot: it is not built

    @cached_property
    def registry(self) -> JobRegistry:
        return registry_for(self.settings)

    @cached_property
    def serializer(self) -> Serializer:
        return serializer_for(self.settings)


class Services(_Parts):
    """The parts of taskq for one `Settings`, built when first asked for."""

    def __init__(self, settings: Settings, connection: redis.Redis | None = None) -> None:
        super().__init__(settings, connection)

    @cached_property
    def connection(self) -> redis.Redis:
        """A client for `REDIS_URL` (`QueueUnavailableError` if it cannot be parsed)."""
        return connect(self.settings)

    @cached_property
    def queue(self) -> RQQueue:
        """The producer: `enqueue`, `get`, `wait`, `cancel`, `stop`."""
        return RQQueue(self.connection, self.settings, self.registry, self.serializer)

    @cached_property
    def admin(self) -> QueueAdmin:
        """What operators read and steer: counts, workers, failed jobs."""
        return QueueAdmin(self.connection, self.settings, self.serializer)

    def memory_queue(
        self, *, run_inline: bool = False, clock: Callable[[], float] | None = None
    ) -> InMemoryQueue:
        """The same port in memory, for the application's unit tests."""
        return InMemoryQueue(self.settings, self.registry, run_inline=run_inline, clock=clock)

    def worker(
        self,
        functions: Mapping[str, Callable[..., Any]],
        queues: Sequence[str] | None = None,
        *,
        name: str | None = None,
        mode: str | None = None,
        events: Sequence[WorkerEvents] = (),
        schedules: bool = False,
        concurrency: int | None = None,
    ) -> Worker:
        """A worker for `queues` (default: all, highest priority first) running `functions`;
        with `schedules`, it fires the schedules of `QUEUE_SCHEDULES_MODULE` too; with
        `concurrency`, it runs up to that many jobs at once on an asyncio loop (`concurrency.py`).

        Raises:
            InvalidQueueNameError: a queue name is not valid.
            ScheduleError, ConfigError: a schedule or a limit cannot be used (the message says which).
        """
        settings, connection = self.settings, self.connection
        names = [check_queue_name(queue) for queue in (queues or settings.queue_names)]
        name = name or f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        heartbeat_ttl = int(3 * settings.heartbeat_interval + 5)
        known = {path: self.registry.version(path) for path in functions}  # published: who knows what
        parts: dict[str, Any] = dict(
            store=RedisJobStore(
                connection,
                name,
                names,
                heartbeat_ttl,
                WORKER_TTL + 60,
                limits_for(settings, self.registry),
                settings.max_failed,
            ),
            presence=WorkerPresence(connection, name, names, WORKER_TTL, known, concurrency),
            reaper=Reaper(connection, names, settings.maintenance_interval, name, settings.max_failed),
            runner=JobRunner(
                settings,
                self.registry,
                self.serializer,
                functions,
                ProgressWriter(connection, self.serializer),
                knows=WorkerDirectory(connection, settings.redis_retry_seconds).knows,
            ),
            settings=settings,
            queues=names,
            events=events,
            scheduler=self.scheduler(events) if schedules else None,
        )
        if concurrency is not None:
            from app.worker.concurrency import ConcurrentWorker  # it builds on Worker

            return ConcurrentWorker(concurrency=concurrency, **parts)
        return Worker(mode=mode or settings.worker_mode, **parts)

    def scheduler(self, events: Sequence[WorkerEvents] = ()) -> Scheduler:
        """The schedules' scheduler (`QUEUE_SCHEDULES_MODULE`), checked against the registry."""
        schedules = load_schedules(self.settings.schedules_module, self.registry)
        return Scheduler(schedules, self.schedule_store(), events)

    def schedule_store(self) -> ScheduleStore:
        """The schedules' state in Redis, and the script that fires their ticks."""
        return ScheduleStore(self.connection, JobSpecBuilder(self.settings, self.registry, self.serializer))


class AsyncServices(_Parts):
    """The asyncio parts for one `Settings` (an `async def` service's producer), built when first asked for.

    Build it in the service's lifespan (it holds a `redis.asyncio` pool, which belongs to the loop
    it was first used on) and `await services.aclose()` on shutdown.
    """

    def __init__(self, settings: Settings, connection: aioredis.Redis | None = None) -> None:
        super().__init__(settings, connection)

    @cached_property
    def connection(self) -> aioredis.Redis:
        """A `redis.asyncio` client for `REDIS_URL` (`QueueUnavailableError`: bad or Sentinel URL)."""
        return connect_async(self.settings)

    @cached_property
    def queue(self) -> AsyncRQQueue:
        """The producer, as coroutines: `await queue.enqueue(...)`, `get`, `wait`, `cancel`, `stop`."""
        return AsyncRQQueue(self.connection, self.settings, self.registry, self.serializer)

    async def aclose(self) -> None:
        """Close the client's connections, if it was built."""
        if "connection" in self.__dict__:
            await self.connection.aclose()


def bootstrap_async(
    settings: Settings | None = None, *, connection: aioredis.Redis | None = None
) -> AsyncServices:
    """The asyncio producer's parts for `settings` (default: the environment's).

    Raises:
        ConfigError: with no `settings`, a variable of the environment holds a bad value.
    """
    return AsyncServices(settings if settings is not None else default_settings(), connection)


def bootstrap(settings: Settings | None = None, *, connection: redis.Redis | None = None) -> Services:
    """Everything for `settings` (default: the environment's), on `connection` if you have one.

    Raises:
        ConfigError: with no `settings`, a variable of the environment holds a bad value.
    """
    return Services(settings if settings is not None else default_settings(), connection)
