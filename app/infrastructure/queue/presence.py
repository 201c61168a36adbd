"""A worker's presence in rq's data model: registered (so `rq info` and rq-dashboard list it),
its state, and rq's worker commands (`stop-job`, `shutdown`, `kill-horse`) delivered to it.

rq's `BaseWorker` is kept behind this one adapter: the worker loop never subclasses it, never
touches its private attributes, and sees only our errors. Commands arrive on rq's pubsub thread
and are handed to a `Commands` object the worker gives us.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

import redis
from rq.command import parse_payload
from rq.worker import BaseWorker

from app.infrastructure.queue.directory import JOBS_FIELD, encode_jobs
from app.infrastructure.queue.errors import WorkerNameError
from app.infrastructure.queue.schema import WorkerField, WorkerState
from app.infrastructure.redis.connection import describe, translating

log = logging.getLogger("taskq.worker")


class Commands(Protocol):
    """What rq's worker commands ask of a worker (called from the pubsub thread: keep it short)."""

    def stop_job(self, job_id: str) -> None:
        """Stop this job if it is the one running (or about to run) here."""

    def request_shutdown(self) -> None:
        """Stop after the current job, as a SIGTERM would."""

    def kill_horse(self) -> None:
        """Kill the running job's process (it is recorded as a failed attempt)."""


class _RqWorker(BaseWorker):
    """rq's worker registration, with its commands routed to our `Commands`."""

    commands: Commands | None = None
    jobs: Mapping[str, int] = MappingProxyType({})

    def serialize(self) -> dict[str, Any]:
        """rq's worker hash, plus the jobs this worker knows: written in the same step as its birth."""
        return {**super().serialize(), JOBS_FIELD: encode_jobs(self.jobs)}

    def handle_payload(self, message: dict[str, Any]) -> None:
        payload = parse_payload(message)
        command, commands = payload.get("command"), self.commands
        if commands is None:
            return
        if command == "stop-job" and isinstance(payload.get("job_id"), str):
            commands.stop_job(payload["job_id"])
        elif command == "shutdown":
            commands.request_shutdown()
        elif command == "kill-horse":
            commands.kill_horse()


class WorkerPresence:
    """Registers a worker under `name` for `queues`, and listens for rq's commands to it.

    `jobs` ({job path: params version}) is published with the registration, for the producers and
    workers that ask who knows a job (`directory.py`).
    """

    def __init__(
        self,
        connection: redis.Redis,
        name: str,
        queues: Sequence[str],
        ttl: int,
        jobs: Mapping[str, int] | None = None,
        concurrency: int | None = None,
    ) -> None:
        self.where = describe(connection)
        self.name = name
        self._rq = _RqWorker(
            list(queues), name=name, connection=connection, worker_ttl=ttl, prepare_for_work=False
        )
        self._rq.hostname, self._rq.pid, self._rq.ip_address = socket.gethostname(), os.getpid(), "unknown"
        self._rq.jobs = dict(jobs or {})
        self.key: str = self._rq.key
        self.concurrency = concurrency  # published for `taskq info` (a `--concurrency N` worker)

    def register(self, commands: Commands) -> None:
        """Register as a live worker and start listening for commands.

        Raises:
            QueueError: Redis refused or is unreachable (an outage is retryable).
        """
        self._rq.commands = commands
        with translating(self.where):
            try:
                self._rq.register_birth()
            except ValueError as exc:  # rq: "There exists an active worker named ..."
                raise WorkerNameError(self.name) from exc
            self._rq.connection.hset(self.key, WorkerField.TASKQ, "1")
            if self.concurrency is not None:
                self._rq.connection.hset(self.key, WorkerField.CONCURRENCY, str(self.concurrency))
            self._rq.subscribe()
            self._rq.set_state(WorkerState.STARTED)

    def restore(self) -> None:
        """Register again after Redis forgot this worker (it restarted without persistence).

        What a claim wrote meanwhile is only part of rq's worker hash: it is replaced whole.
        """
        with translating(self.where):
            self._rq.connection.delete(self.key)
            self._rq.register_birth()
            self._rq.set_state(WorkerState.BUSY)

    def set_state(self, state: str) -> None:
        with translating(self.where):
            self._rq.set_state(state)

    def deregister(self) -> None:
        """Stop listening and register the worker's death (best effort: the hash expires anyway)."""
        self._rq.commands = None
        try:
            with translating(self.where):
                self._rq.register_death()
        finally:
            self._rq.unsubscribe()
