"""`QueueAdmin`: what operators read and steer across the queues (the `taskq` CLI, metrics).

Counts per registry, the workers, the failed jobs; requeue and purge of failed jobs. It reads
rq's data model directly (plain commands in pipelines) instead of rq's registry classes, whose
counts run rq's own cleanup: that would fail or retry abandoned jobs behind our reaper's back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import redis

from app.config import Settings
from app.infrastructure.queue import keys, lua
from app.infrastructure.queue.admin_records import (
    FailedJob,
    LimitUse,
    QueueCounts,
    WaitingJob,
    WorkerInfo,
    as_json,
    counts_of,
    failed_of,
    waiting_of,
    worker_of,
)
from app.infrastructure.queue.errors import JobNotFoundError, JobStateError
from app.infrastructure.queue.job_paths import LIMITS, JobRegistry
from app.infrastructure.queue.job_spec import compress, describe
from app.infrastructure.queue.limits import merged
from app.infrastructure.queue.record import JobRecord, parse_rq_time, text
from app.infrastructure.queue.schema import KEYS, Field, JobStatus, packer
from app.infrastructure.queue.serialization import Serializer, dumps_job_data, make_serializer
from app.infrastructure.queue.workflow_view import WorkflowView, read_workflow
from app.infrastructure.redis.connection import Guard, server_time

#: The registries `counts()` reports, in a job's order of life (a stopped job is in `failed`).
STATES = tuple(status.value for status in JobStatus if status is not JobStatus.STOPPED)
#: How many jobs at the head of a queue are looked at for the oldest one (bounded work per scrape);
#: jobs put back at the front (a reaped job) make the very first one not always the oldest.
HEAD = 10
_PURGE_BATCH = 500
_requeue_args = packer("requeue")
_purge_args = packer("purge")

#: At most this many handed-back jobs are read per queue (bounded work per `info` or scrape).
WAITING_LIMIT = 1000
_WAITING_FIELDS = (Field.STATUS, Field.ATTEMPTS, Field.DESCRIPTION, Field.PARAMS_VERSION, Field.UNKNOWN_SINCE)

__all__ = [
    "HEAD",
    "STATES",
    "FailedJob",
    "LimitUse",
    "QueueAdmin",
    "QueueCounts",
    "WaitingJob",
    "WorkerInfo",
    "as_json",
]


class QueueAdmin:
    """Reads counts, workers and failed jobs; requeues and purges failed jobs."""

    def __init__(
        self, redis_conn: redis.Redis, settings: Settings, serializer: Serializer | None = None
    ) -> None:
        self.connection = redis_conn
        self.settings = settings
        self.serializer = serializer or make_serializer(
            settings.serializer, settings.signing_key, settings.old_signing_keys
        )
        self._guard = Guard(redis_conn, settings.redis_retry_seconds)
        self._requeue = redis_conn.register_script(lua.source("requeue"))
        self._purge = redis_conn.register_script(lua.source("purge"))

    def queues(self) -> list[str]:
        """Our queues in priority order, then any other queue rq knows of (written by plain rq)."""
        known = self._guard.call(lambda: self.connection.smembers(keys.QUEUES_SET))
        names = [text(key).removeprefix(keys.queue("")) for key in known]
        ours = self.settings.queue_names
        others = sorted(n for n in names if n not in ours and keys.QUEUE_NAME_RE.fullmatch(n))
        return [*self.settings.queue_names, *others]

    def counts(self, queues: Sequence[str] | None = None) -> list[QueueCounts]:
        """Per queue: jobs queued, scheduled, deferred, started, finished, failed, canceled.

        Raises:
            QueueUnavailableError: Redis unreachable.
        """
        names = list(queues) if queues is not None else self.queues()
        now = self._guard.call(lambda: server_time(self.connection))  # registries are scored by it

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for queue in names:
                    pipe.llen(keys.queue(queue))
                    pipe.zcard(keys.key("scheduled", queue))
                    pipe.zcard(keys.key("deferred", queue))
                    pipe.zcard(keys.started(queue))
                    # Finished and failed entries are scored by their expiry; past ones are gone.
                    pipe.zcount(keys.key("finished", queue), now, "+inf")
                    pipe.zcount(keys.key("failed", queue), now, "+inf")
                    pipe.zcard(keys.key("canceled", queue))
                    pipe.sismember(keys.PAUSED, queue)
                    pipe.lrange(keys.queue(queue), 0, HEAD - 1)
                    pipe.smembers(keys.key("groups", queue))
                return pipe.execute()

        replies = self._guard.call(read)
        ages = self._oldest_ages(names, replies[8::10], now)
        grouped = self._grouped(names, replies[9::10])
        counts = []
        for i, queue in enumerate(names):
            row = replies[10 * i : 10 * i + 8]
            row[0] = int(row[0]) + grouped[queue]  # keyed jobs wait in their key's group
            counts.append(counts_of(queue, row, ages[queue]))
        return counts

    def _grouped(self, names: list[str], groups: list[set[bytes]]) -> dict[str, int]:
        """Per queue, the jobs waiting in its keys' groups (jobs enqueued with a limit key)."""
        members = [(queue, text(key)) for queue, keys_ in zip(names, groups, strict=True) for key in keys_]

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for queue, key in members:
                    pipe.llen(keys.key("group", f"{queue}:{key}"))
                return pipe.execute()

        found = dict.fromkeys(names, 0)
        for (queue, _), length in zip(members, self._guard.call(read) if members else [], strict=True):
            found[queue] += int(length)
        return found

    def pruned(self, queues: Sequence[str] | None = None) -> dict[str, int]:
        """Per queue: failed jobs deleted so far because the registry was full (QUEUE_MAX_FAILED).

        Raises:
            QueueUnavailableError: Redis unreachable.
        """
        names = list(queues) if queues is not None else self.queues()
        found = self._guard.call(lambda: self.connection.mget([keys.key("pruned", q) for q in names]))
        return {queue: int(raw or 0) for queue, raw in zip(names, found, strict=True)}

    def _oldest_ages(self, names: list[str], heads: list[list[bytes]], now: float) -> dict[str, float | None]:
        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for head in heads:
                    for job_id in head:
                        pipe.hget(keys.job(text(job_id)), "enqueued_at")
                return pipe.execute()

        stamps = iter(self._guard.call(read) if any(heads) else [])
        ages: dict[str, float | None] = {}
        for queue, head in zip(names, heads, strict=True):
            times = [parse_rq_time(next(stamps)) for _ in head]
            known = [t.timestamp() for t in times if t is not None]
            ages[queue] = max(0.0, now - min(known)) if known else None
        return ages

    def workflow(self, workflow_id: str) -> WorkflowView:
        """A group (or a chain, by its last job's id): its outcome, its members' counts, its
        callbacks (`taskq group`).

        Raises:
            WorkflowNotFoundError: no such workflow (or its record expired). InvalidJobIdError.
        """
        return read_workflow(self.connection, self._guard, workflow_id)

    def workflows_pending(self) -> tuple[int, int]:
        """(workflows with members pending, members pending in all): two O(1) reads, for metrics."""

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.zcard(KEYS["wf_live"])
                pipe.hlen(KEYS["wf_index"])
                return pipe.execute()

        workflows, members = self._guard.call(read)
        return int(workflows), int(members)

    def paused(self) -> list[str]:
        """The queues no worker claims from (`taskq pause`)."""
        return sorted(text(name) for name in self._guard.call(lambda: self.connection.smembers(keys.PAUSED)))

    def limits(self) -> list[LimitUse]:
        """Every limit in force (`job_paths.LIMITS`, `QUEUE_LIMITS`), with what runs and waits on it.

        Read without SCAN (an operator needs no keyspace-wide command): job-wide limits from their
        slot and rate sets; per-key ones from the running jobs (the started registries) and the
        waiting lists and held keys in `limit_blocked`.
        """
        paths = dict(JobRegistry(extra=self.settings.extra_jobs))
        limits = merged(LIMITS, self.settings.limits)
        if not limits:
            return []
        now = self._guard.call(lambda: server_time(self.connection))
        keyed, held = self._keyed_use()
        uses = []
        for name, limit in limits.items():
            job_name = paths.get(name, name)
            for kind, allowed in limit.in_force():
                if kind.endswith("_per_key"):
                    running, holders, waiting = keyed.get(job_name, (0, set(), 0))
                    # A held key's jobs wait in its group, whatever their names: counted on each.
                    uses.append(LimitUse(job_name, kind, allowed, running, waiting + held, len(holders)))
                else:
                    window = limit.rate[1] / 1000 if kind == "rate" else 0.0
                    uses.append(self._use(job_name, kind, allowed, window, now))
        return uses

    def _use(self, job_name: str, kind: str, allowed: str, window: float, now: float) -> LimitUse:
        def read() -> tuple[int, int]:
            if kind == "rate":
                running = self.connection.zcount(keys.key("rate", job_name), now - window, "+inf")
            else:
                running = self.connection.zcard(keys.key("slots", job_name))
            return int(running), int(self.connection.llen(keys.key("limit_wait", job_name)))

        running, waiting = self._guard.call(read)
        return LimitUse(job_name, kind, allowed, running, waiting, 0)

    def _keyed_use(self) -> tuple[dict[str, tuple[int, set[str], int]], int]:
        """Per job name: (running jobs with a limit key, their keys, jobs set aside on a key's limit);
        and the jobs in the groups of held keys."""

        def read() -> tuple[list[list[Any]], list[tuple[bytes, int]]]:
            entries = [
                text(entry).rpartition(":")[0]
                for queue in self.queues()
                for entry in self.connection.zrange(keys.started(queue), 0, 999)
            ]
            with self.connection.pipeline(transaction=False) as pipe:
                for job_id in entries:
                    pipe.hmget(keys.job(job_id), Field.DESCRIPTION, Field.LIMIT_KEY)
                running = pipe.execute()
            blocked: list[bytes] = self.connection.zrange(KEYS["limit_blocked"], 0, 999)  # type: ignore[assignment]
            with self.connection.pipeline(transaction=False) as pipe:
                for member in blocked:  # waiting lists, and the groups of held keys
                    pipe.llen(member)
                return running, list(zip(blocked, pipe.execute(), strict=True))

        running, blocked = self._guard.call(read)
        found: dict[str, tuple[int, set[str], int]] = {}
        for description, limit_key in running:
            if description and limit_key:
                name = text(description).partition("(")[0]
                count, holders, waiting = found.get(name, (0, set(), 0))
                found[name] = (count + 1, holders | {text(limit_key)}, waiting)
        wait_prefix = KEYS["limit_wait"].format("")
        for member, length in blocked:
            name = text(member).removeprefix(wait_prefix).rpartition(":")[0]
            if text(member).startswith(wait_prefix) and name:
                count, holders, waiting = found.get(name, (0, set(), 0))
                found[name] = (count, holders, waiting + int(length))
        group_prefix = KEYS["group"].format("")
        held = sum(int(length) for member, length in blocked if text(member).startswith(group_prefix))
        return found, held

    def workers(self) -> list[WorkerInfo]:
        """The live workers (registered and not dead), by name.

        Raises:
            QueueUnavailableError: Redis unreachable.
        """
        members = self._guard.call(lambda: self.connection.smembers(keys.WORKERS_SET))
        worker_keys = sorted(text(member) for member in members)

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for key in worker_keys:
                    pipe.hgetall(key)
                return pipe.execute()

        hashes = self._guard.call(read) if worker_keys else []
        found = [
            worker_of(key.removeprefix(keys.key("worker", "")), fields)
            for key, fields in zip(worker_keys, hashes, strict=True)
            if fields and b"death" not in fields
        ]
        now = self._guard.call(lambda: server_time(self.connection)) if found else 0.0
        return [replace(w, stale=self._silent(w, now)) for w in found]

    def _silent(self, worker: WorkerInfo, now: float) -> bool:
        """Whether a worker missed its heartbeats (Redis's clock): a live one beats every half interval."""
        if worker.last_heartbeat is None:
            return False
        quiet = now - worker.last_heartbeat.timestamp()
        return quiet > 2 * self.settings.heartbeat_interval + self.settings.idle_poll

    def suspended(self) -> bool:
        """Whether `rq suspend` is in force: workers take no jobs until `rq resume`."""
        return bool(self._guard.call(lambda: self.connection.exists(keys.SUSPENDED)))

    def strangers(self, workers: Sequence[WorkerInfo] | None = None) -> list[WorkerInfo]:
        """Live workers that are not taskq's (plain `rq worker`s) and serve one of our queues.

        They run our jobs without our checks: unregistered functions, no signature check, retries
        of permanent errors (SECURITY.md). Our stored jobs refuse to run there (`TASKQ_ONLY`).
        """
        ours = set(self.settings.queue_names)
        return [
            w
            for w in (self.workers() if workers is None else workers)
            if not w.taskq and ours & set(w.queues)
        ]

    def waiting(self, queues: Sequence[str] | None = None) -> list[WaitingJob]:
        """Jobs handed back by workers that do not know them, still waiting for one that does;
        longest waiting first (at most WAITING_LIMIT per queue).

        Raises:
            QueueUnavailableError: Redis unreachable.
        """
        names = list(queues) if queues is not None else self.queues()

        def index() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for queue in names:
                    pipe.zrange(keys.key("unknown", queue), 0, WAITING_LIMIT - 1, withscores=True)
                return pipe.execute()

        entries = [
            (queue, text(job_id), score)
            for queue, found in zip(names, self._guard.call(index), strict=True)
            for job_id, score in found
        ]

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for _queue, job_id, _score in entries:
                    pipe.hmget(keys.job(job_id), _WAITING_FIELDS)
                return pipe.execute()

        jobs = [
            waiting_of(job_id, queue, fields, score)
            for (queue, job_id, score), fields in zip(
                entries, self._guard.call(read) if entries else [], strict=True
            )
        ]
        return sorted(
            (job for job in jobs if job), key=lambda job: (job.since is None, job.since or 0, job.id)
        )

    def failed(self, queues: Sequence[str] | None = None, limit: int = 100) -> list[FailedJob]:
        """The newest failed (or stopped) jobs, at most `limit`, newest first.

        Raises:
            QueueUnavailableError: Redis unreachable.
        """
        entries = self.failed_ids(queues, limit)

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for _queue, job_id in entries:
                    pipe.hgetall(keys.job(job_id))
                return pipe.execute()

        hashes = self._guard.call(read) if entries else []
        return [
            failed_of(JobRecord(job_id, fields), queue)
            for (queue, job_id), fields in zip(entries, hashes, strict=True)
            if fields
        ]

    def failed_ids(
        self, queues: Sequence[str] | None = None, limit: int | None = None
    ) -> list[tuple[str, str]]:
        """(queue, job id) of the failed registries, newest first, at most `limit` (None: all)."""
        names = list(queues) if queues is not None else self.queues()

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for queue in names:
                    pipe.zrevrange(
                        keys.key("failed", queue), 0, -1 if limit is None else limit - 1, withscores=True
                    )
                return pipe.execute()

        found = [
            (score, queue, text(job_id))
            for queue, entries in zip(names, self._guard.call(read), strict=True)
            for job_id, score in entries
        ]
        found.sort(reverse=True)
        return [(queue, job_id) for _score, queue, job_id in found[:limit]]

    def traceback(self, job_id: str) -> str | None:
        """The full stored error of the job's last failed attempt.

        Raises:
            JobNotFoundError: no such job.
        """
        keys.check_job_id(job_id)

        def read() -> Any:
            return self.connection.hgetall(keys.job(job_id))

        fields = self._guard.call(read)
        if not fields:
            raise JobNotFoundError(job_id)
        return JobRecord(job_id, fields).error_text()

    def requeue(self, job_id: str, as_job: str | None = None) -> str:
        """Put a failed or stopped job back in its queue with its retries reset; return the queue.

        `as_job` (a registered job path, `taskq failed requeue --as`) renames the job's function,
        for jobs that failed under a path that was renamed since; its params are kept. The
        stored call is loaded for that as a worker loads it: its signature is checked first.

        Raises:
            JobNotFoundError: no such job.
            JobStateError: the job is not failed or stopped.
            PayloadError: with `as_job`, the stored call cannot be loaded (signature, size, decoding).
        """
        keys.check_job_id(job_id)
        data, sig, description, expect = self._renamed(job_id, as_job) if as_job else (b"", b"", "", b"")
        _, args = _requeue_args(
            job_id=job_id, data=data, sig=sig, description=description, expect_data=expect
        )
        reply = self._guard.call(lambda: self._requeue(args=args))
        if reply[0] == -1:
            raise JobNotFoundError(job_id)
        if reply[0] == 0:
            raise JobStateError(job_id, text(reply[1]), "requeue")
        return text(reply[1])

    def _renamed(self, job_id: str, job_path: str) -> tuple[bytes, bytes, str, bytes]:
        """(the call as `job_path`, its tag, its description, the stored data it replaces)."""

        def read() -> Any:
            return self.connection.hgetall(keys.job(job_id))

        fields = self._guard.call(read)
        if not fields:
            raise JobNotFoundError(job_id)
        record = JobRecord(job_id, fields)
        _name, instance, args, kwargs = record.load_call(self.serializer, self.settings.max_payload_bytes)
        payload, tag = dumps_job_data(self.serializer, (job_path, instance, args, kwargs))
        return compress(payload), tag, describe(job_path, kwargs), record.data

    def requeue_all(self, queues: Sequence[str] | None = None) -> list[str]:
        """Requeue every failed or stopped job of `queues`; return their ids (oldest first)."""
        done = []
        for _queue, job_id in reversed(self.failed_ids(queues)):
            try:
                self.requeue(job_id)
            except (JobNotFoundError, JobStateError):
                continue  # expired, or requeued by someone else meanwhile
            done.append(job_id)
        return done

    def purge(self, queues: Iterable[str] | None = None) -> int:
        """Delete every failed or stopped job of `queues` for good; return how many were deleted."""
        deleted = 0
        for queue in list(queues) if queues is not None else self.queues():
            while True:
                looked, gone = self._purge_batch(queue)
                deleted += gone
                if looked < _PURGE_BATCH:
                    break
        return deleted

    def _purge_batch(self, queue: str) -> tuple[int, int]:
        _, args = _purge_args(queue=queue, limit=_PURGE_BATCH)
        looked, gone = self._guard.call(lambda: self._purge(args=args))
        return int(looked), int(gone)
