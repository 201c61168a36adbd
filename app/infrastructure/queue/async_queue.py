"""`AsyncRQQueue`: the `JobQueue` port as coroutines, on `redis.asyncio`, for asyncio services.

`await queue.enqueue(job_name=..., params=...)` from a FastAPI/Starlette/aiohttp handler never
blocks the event loop. Everything but the I/O is `RQQueue`'s: the same `JobSpecBuilder`
(validation, params check, signing, idempotency), the same scripts with the same arguments
(`producer_calls.py`), the same errors (`translate`, through `AsyncGuard`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from app import tracing
from app.config import Settings
from app.infrastructure.queue import keys, lua
from app.infrastructure.queue import producer_calls as calls
from app.infrastructure.queue.directory import WORKER_FIELDS, LiveWorker, live_workers
from app.infrastructure.queue.errors import (
    QueueError,
    QueueReplicationError,
)
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.job_spec import JobSpec
from app.infrastructure.queue.port import NO_PARAMS, JobRequest, JobView
from app.infrastructure.queue.record import text
from app.infrastructure.queue.schema import Field
from app.infrastructure.queue.serialization import Serializer
from app.infrastructure.queue.workflows import (
    Callback,
    Chain,
    Child,
    Edge,
    Planner,
    Policy,
    WorkflowPlan,
    workflow_args,
    workflow_not_replicated,
    written_workflow,
)
from app.infrastructure.redis.async_connection import AsyncGuard, AsyncScript

if TYPE_CHECKING:
    from typing import Unpack

    from app.infrastructure.queue.port import EnqueueOptions


class AsyncRQQueue:
    """`RQQueue`'s methods as coroutines: enqueue, enqueue_many, get, wait, cancel, stop, chain, group."""

    def __init__(
        self,
        redis_conn: aioredis.Redis,
        settings: Settings | None = None,
        registry: JobRegistry | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        """`AsyncRQQueue(client)`; `app.bootstrap.bootstrap_async(settings)` builds one for you."""
        parts = calls.producer_parts(
            redis_conn.connection_pool.connection_kwargs, settings, registry, serializer
        )
        self.settings, self.registry, self.serializer = parts.settings, parts.registry, parts.serializer
        self._builder = parts.builder
        self.connection = redis_conn
        self._guard = AsyncGuard(redis_conn, self.settings.redis_retry_seconds)
        self._scripts = {
            name: AsyncScript(redis_conn, lua.source(name)) for name in ("enqueue", "enqueue_one", "workflow")
        }
        self._planner = Planner(self._builder)
        self._cancel = AsyncScript(redis_conn, lua.source("cancel"))
        self._registered: set[str] = set()

    def __repr__(self) -> str:
        return f"AsyncRQQueue({self._guard.where}, queues={self.settings.queue_names})"

    async def enqueue(
        self, job_name: str, params: Mapping[str, Any] = NO_PARAMS, **options: Unpack[EnqueueOptions]
    ) -> str:
        """Enqueue `job_name(**params)` and return the job id (`RQQueue.enqueue`, awaited).

        Raises:
            The errors of `RQQueue.enqueue`: bad input before anything is written, our
            `QueueUnavailableError` family when Redis fails.
        """
        spec = self._builder.build_call(job_name, params, options, time.time())
        if options.get("require_worker"):
            calls.check_known([spec], await self._live())
        await self._write([spec])
        return spec.job_id

    async def enqueue_many(self, requests: Iterable[JobRequest]) -> list[str]:
        """A batch, all or nothing up to BATCH_CHUNK jobs (`RQQueue.enqueue_many`, awaited).

        Raises:
            The errors of `enqueue` for the first bad item; `BatchError` if Redis failed after
            part of a large batch was written (`written` lists it).
        """
        specs, wanted = calls.plan_batch(self._builder, requests)
        if wanted:
            calls.check_known(wanted, await self._live())
        outside = calls.outside_dependencies(specs) if len(specs) > calls.BATCH_CHUNK else []
        if outside:
            statuses = await self._guard.call(lambda: self._statuses(outside))
            calls.check_dependencies(specs, outside, statuses)
        done: list[str] = []
        for chunk in calls.chunks(specs):
            try:
                await self._write(chunk)
            except QueueError as exc:
                if not done:
                    raise  # nothing of the batch was written: the error as it came, cause kept
                raise calls.batch_failed(done, specs, exc) from exc
            done += [spec.job_id for spec in chunk]
        return done

    async def get(self, job_id: str) -> JobView:
        """A snapshot of the job. Raises `InvalidJobIdError`, `JobNotFoundError`."""
        keys.check_job_id(job_id)

        async def read() -> list[Any]:
            async with self.connection.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.job(job_id))
                pipe.xrevrange(keys.results(job_id), "+", "-", count=1)
                return await pipe.execute()

        fields, results = await self._guard.call(read)
        return calls.view(job_id, fields, results, self.serializer, self.settings.max_payload_bytes)

    async def wait(self, job_id: str, timeout: float) -> JobView:
        """Until the job is final; `WaitTimeoutError` after `timeout` s. The loop runs meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            view = await self.get(job_id)
            block_ms = calls.wait_slice(view, deadline, timeout)
            if block_ms is None:
                return view
            await self._guard.call(lambda: self._block(job_id, block_ms))  # noqa: B023 (awaited at once)

    async def cancel(self, job_id: str) -> None:
        """Cancel a queued, scheduled or deferred job. Raises `JobNotFoundError`, `JobStateError`."""
        args = calls.cancel_args(job_id)
        calls.canceled(job_id, await self._guard.call(lambda: self._cancel(args=args)))

    async def stop(self, job_id: str) -> None:
        """Ask the job's worker to stop it (ends `stopped`). Raises `JobNotFoundError`, `JobStateError`."""
        keys.check_job_id(job_id)
        status, worker = await self._guard.call(
            lambda: self.connection.hmget(keys.job(job_id), calls.STOP_FIELDS)
        )
        channel, payload = calls.stop_message(job_id, status, worker)
        if not await self._guard.call(lambda: self.connection.publish(channel, payload)):
            raise calls.not_listening(job_id, worker)

    async def chain(
        self, steps: Iterable[JobRequest | Edge], *, pass_result: str | None = None, policy: Policy = "fail"
    ) -> list[str]:
        """`RQQueue.chain`, awaited: the same plan, script and errors; the jobs' ids."""
        plan = self._planner.chain(Chain(steps, pass_result=pass_result, policy=policy), time.time())
        await self._write_workflow(plan)
        return plan.job_ids

    async def group(
        self,
        children: Iterable[Child],
        *,
        on_success: Callback | None = None,
        on_failure: Callback | None = None,
        on_complete: Callback | None = None,
        policy: Policy = "fail",
        group_id: str | None = None,
        results_param: str | None = "results",
    ) -> str:
        """`RQQueue.group`, awaited: the same plan, script and errors; the group id."""
        callbacks = {"on_success": on_success, "on_failure": on_failure, "on_complete": on_complete}
        plan = self._planner.group(children, callbacks, policy, group_id, results_param, time.time())
        await self._write_workflow(plan)
        return plan.top

    async def _write_workflow(self, plan: WorkflowPlan) -> None:
        if plan.needs_worker:
            calls.check_known(plan.needs_worker, await self._live())
        args = workflow_args(plan, tracing.current_carrier())
        script = self._scripts["workflow"]
        try:  # a call repeated (a lost reply, too few replicas) finds the workflow written: 'exists'
            reply = await self._guard.call(lambda: self._run(script, args))
        except QueueReplicationError as exc:
            raise workflow_not_replicated(exc, plan) from exc
        written_workflow(plan, reply)

    async def aclose(self) -> None:
        """Close the client's connections (a FastAPI lifespan calls it on shutdown)."""
        await self.connection.aclose()

    async def _write(self, specs: Sequence[JobSpec]) -> None:
        call = calls.write_call(specs, self._registered)
        script = self._scripts[call.script]
        try:
            reply = await self._guard.call(lambda: self._run(script, call.next_args()))
        except QueueReplicationError as exc:
            raise calls.not_replicated(exc, specs) from exc
        if call.registers is not None:
            self._registered.add(call.registers)
        calls.written(specs, call, reply)

    async def _run(self, script: AsyncScript, args: list[Any]) -> Any:
        """One enqueue script; with QUEUE_WAIT_REPLICAS, acknowledged by that many replicas."""
        if self.settings.wait_replicas:
            return await script.acked(self.settings.wait_replicas, self.settings.wait_timeout_ms, args=args)
        return await script(args=args)

    async def _statuses(self, job_ids: Sequence[str]) -> list[Any]:
        async with self.connection.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(keys.job(job_id), Field.STATUS)
            return await pipe.execute()

    async def _live(self) -> list[LiveWorker]:
        members = await self._guard.call(lambda: self.connection.smembers(keys.WORKERS_SET))
        worker_keys = sorted(text(member) for member in members)
        if not worker_keys:
            return []

        async def read() -> list[Any]:
            async with self.connection.pipeline(transaction=False) as pipe:
                for key in worker_keys:
                    pipe.hmget(key, WORKER_FIELDS)
                return await pipe.execute()

        return live_workers(worker_keys, await self._guard.call(read))

    async def _block(self, job_id: str, block_ms: float) -> None:
        """Sleep until a new result arrives for the job, or `block_ms` pass (without the loop)."""
        stream = keys.results(job_id)
        last = await self.connection.xrevrange(stream, "+", "-", count=1)
        since: bytes = last[0][0] if last else b"0-0"  # type: ignore[assignment]
        await self.connection.xread({stream: since}, block=max(1, int(block_ms)), count=1)
