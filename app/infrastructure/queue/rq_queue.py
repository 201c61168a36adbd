"""`RQQueue`: the `JobQueue` port on Redis, in rq 2.12's data model.

Each enqueue is one round trip: a Lua script writes the rq job hash and pushes its id, or finds
the live job that already has that id (idempotency, rq#1701). rq's own `Job.fetch`, `rq info`
and rq-dashboard read what it writes. The producer never imports job code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import redis

from app import tracing
from app.config import Settings
from app.infrastructure.queue import keys, lua
from app.infrastructure.queue import producer_calls as calls
from app.infrastructure.queue.directory import WorkerDirectory
from app.infrastructure.queue.errors import (
    QueueError,
    QueueReplicationError,
    WaitTimeoutError,
    WorkflowNotFoundError,
)
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.job_spec import JobSpec
from app.infrastructure.queue.port import NO_PARAMS, JobRequest, JobView
from app.infrastructure.queue.record import text
from app.infrastructure.queue.schema import Field, WorkflowField, WorkflowState
from app.infrastructure.queue.serialization import Serializer
from app.infrastructure.queue.workflow_view import WorkflowView, read_workflow
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
from app.infrastructure.redis.connection import Guard
from app.infrastructure.redis.script import FastScript

if TYPE_CHECKING:
    from typing import Unpack

    from app.infrastructure.queue.port import EnqueueOptions

log = logging.getLogger(__name__)

BATCH_CHUNK = calls.BATCH_CHUNK


class RQQueue:
    """Enqueue jobs into Redis for `python -m app.worker`; read, wait for, cancel and stop them."""

    def __init__(
        self,
        redis_conn: redis.Redis,
        settings: Settings | None = None,
        registry: JobRegistry | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        """`RQQueue(redis_conn)` takes its settings from the environment (through `app.bootstrap`)."""
        parts = calls.producer_parts(
            redis_conn.connection_pool.connection_kwargs, settings, registry, serializer
        )
        self.settings, self.registry, self.serializer = parts.settings, parts.registry, parts.serializer
        self._builder = parts.builder
        self.connection = redis_conn
        self._guard = Guard(redis_conn, self.settings.redis_retry_seconds)
        self._enqueue = FastScript(redis_conn, lua.source("enqueue"))
        self._enqueue_one = FastScript(redis_conn, lua.source("enqueue_one"))
        self._registered: set[str] = set()  # queues this producer already added to rq:queues
        self._cancel = redis_conn.register_script(lua.source("cancel"))
        self._directory = WorkerDirectory(redis_conn, self.settings.redis_retry_seconds)

    def __repr__(self) -> str:
        return f"RQQueue({self._guard.where}, queues={self.settings.queue_names})"

    def enqueue(
        self, job_name: str, params: Mapping[str, Any] = NO_PARAMS, **options: Unpack[EnqueueOptions]
    ) -> str:
        """Enqueue `job_name(**params)` and return the job id.

        With `job_id`, a live job of that id (queued, scheduled, deferred, started, or finished
        within its result TTL) is returned as is: nothing is created and nothing runs twice.
        With `require_worker=True`, it is refused unless a live worker of its queue knows the job.

        Raises:
            UnknownJobError, InvalidParamsError, SerializationError, PayloadTooLargeError,
            InvalidOptionError, InvalidJobIdError, DependencyError: bad input; nothing written.
            NoWorkerError: `require_worker=True` and no live worker knows the job; nothing written.
            QueueUnavailableError, QueueFullError: Redis unreachable, slow or full, after bounded
            retries (retryable). QueuePermissionError: a wrong password or ACL (not retryable).
        """
        spec = self._builder.build_call(job_name, params, options, time.time())
        if options.get("require_worker"):
            self._check_known([spec])
        self._write([spec])
        return spec.job_id

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[str]:
        """Enqueue a batch: all or nothing up to BATCH_CHUNK jobs (one atomic script call).

        Every request is validated before anything is written: one bad item rejects the batch.
        A request may depend on an earlier one of the same batch. A larger batch is written in
        calls of BATCH_CHUNK jobs, each short, so Redis never blocks its other clients for long
        (one script of 200,000 jobs would hold it for seconds); its dependencies outside the
        batch are checked before anything is written.

        Raises:
            The errors of `enqueue`, for the first bad item; nothing of the batch is written.
            BatchError: Redis failed after part of a large batch was written; `written` lists it.
        """
        specs, wanted = calls.plan_batch(self._builder, requests)
        if wanted:
            self._check_known(wanted)
        if len(specs) > BATCH_CHUNK:
            self._check_dependencies(specs)
        written: list[str] = []
        for chunk in calls.chunks(specs):
            try:
                self._write(chunk)
            except QueueError as exc:
                if not written:
                    raise  # nothing of the batch was written: the error as it came, cause kept
                raise calls.batch_failed(written, specs, exc) from exc
            written += [spec.job_id for spec in chunk]
        return written

    def _check_dependencies(self, specs: Sequence[JobSpec]) -> None:
        """Jobs that a large batch depends on outside itself exist and can still finish."""
        outside = calls.outside_dependencies(specs)
        if not outside:
            return

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                for dep in outside:
                    pipe.hget(keys.job(dep), Field.STATUS)
                return pipe.execute()

        calls.check_dependencies(specs, outside, self._guard.call(read))

    def _check_known(self, specs: Sequence[JobSpec]) -> None:
        """Raises `NoWorkerError` for the first job no live worker of its queue knows (name and version)."""
        calls.check_known(specs, self._directory.live())

    def _write(self, specs: Sequence[JobSpec]) -> None:
        call = calls.write_call(specs, self._registered)
        script = self._enqueue_one if call.script == "enqueue_one" else self._enqueue
        try:
            reply = self._guard.call(lambda: self._run(script, call.next_args()))
        except QueueReplicationError as exc:
            raise calls.not_replicated(exc, specs) from exc
        if call.registers is not None:
            self._registered.add(call.registers)
        calls.written(specs, call, reply)

    def _run(self, script: FastScript, args: Sequence[Any]) -> Any:
        """One enqueue script; with QUEUE_WAIT_REPLICAS, acknowledged by that many replicas."""
        if self.settings.wait_replicas:
            return script.acked(self.settings.wait_replicas, self.settings.wait_timeout_ms, args=args)
        return script(args=args)

    def get(self, job_id: str) -> JobView:
        """A snapshot of the job.

        Raises:
            InvalidJobIdError: `job_id` is not a valid id.
            JobNotFoundError: no such job (never existed, or expired).
            QueueUnavailableError: Redis unreachable.
        """
        keys.check_job_id(job_id)

        def read() -> list[Any]:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.job(job_id))
                pipe.xrevrange(keys.results(job_id), "+", "-", count=1)
                return pipe.execute()

        fields, results = self._guard.call(read)
        return calls.view(job_id, fields, results, self.serializer, self.settings.max_payload_bytes)

    def wait(self, job_id: str, timeout: float) -> JobView:
        """Block until the job is final (finished, failed, canceled, stopped) and return its view.

        Raises:
            WaitTimeoutError: still not final after `timeout` seconds.
            JobNotFoundError: no such job.
        """
        deadline = time.monotonic() + timeout
        while True:
            view = self.get(job_id)
            block_ms = calls.wait_slice(view, deadline, timeout)
            if block_ms is None:
                return view
            self._block_for_result(job_id, block_ms)

    def cancel(self, job_id: str) -> None:
        """Cancel a queued, scheduled or deferred job (and its deferred dependents).

        Raises:
            JobNotFoundError: no such job.
            JobStateError: the job started or ended already.
        """
        args = calls.cancel_args(job_id)
        calls.canceled(job_id, self._guard.call(lambda: self._cancel(args=args)))

    def pause(self, queue: str) -> None:
        """Stop every worker (running now or started later) from claiming jobs of `queue`.

        Durable: it lasts until `resume`, across worker restarts. Enqueueing into a paused queue
        still works, and the other queues go on. rq's global `rq suspend` is another thing.

        Raises:
            InvalidQueueNameError: not a queue name.
        """
        keys.check_queue_name(queue)
        self._guard.call(lambda: self.connection.sadd(keys.PAUSED, queue))
        log.info("queue paused queue=%s", queue)

    def resume(self, queue: str) -> None:
        """Let workers claim from `queue` again; idle ones are woken at once."""
        keys.check_queue_name(queue)

        def resume() -> None:
            # SREM is the change; the token only wakes idle workers sooner (they poll anyway), so
            # the two need no transaction (and the producer's and operator's ACLs have no MULTI).
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.srem(keys.PAUSED, queue)
                pipe.rpush(keys.wake(queue), "1")
                pipe.execute()

        self._guard.call(resume)
        log.info("queue resumed queue=%s", queue)

    def stop(self, job_id: str) -> None:
        """Ask the worker running the job to stop it; the job ends `stopped`, without retries.

        Raises:
            JobNotFoundError: no such job.
            JobStateError: the job is not running, or its worker is not listening.
        """
        keys.check_job_id(job_id)
        status, worker = self._guard.call(lambda: self.connection.hmget(keys.job(job_id), calls.STOP_FIELDS))
        channel, payload = calls.stop_message(job_id, status, worker)
        if not self._guard.call(lambda: self.connection.publish(channel, payload)):
            raise calls.not_listening(job_id, worker)

    def _block_for_result(self, job_id: str, block_ms: float) -> None:
        """Sleep until a new result arrives for the job, or `block_ms` pass."""

        def block() -> None:
            last = self.connection.xrevrange(keys.results(job_id), "+", "-", count=1)
            since: bytes = last[0][0] if last else b"0-0"  # type: ignore[assignment]
            self.connection.xread({keys.results(job_id): since}, block=max(1, int(block_ms)), count=1)

        self._guard.call(block)

    # -- workflows (workflows.py): chains and groups --------------------------------------------

    def chain(
        self, steps: Iterable[JobRequest | Edge], *, pass_result: str | None = None, policy: Policy = "fail"
    ) -> list[str]:
        """Enqueue jobs to run one after another, each once the one before finished; their ids.

        With `pass_result`, each job after the first gets the previous one's result as the param
        of that name. When a job fails for good (or is canceled, or its TTL runs out before it
        runs), `policy` (or the step's `Edge`) says what the next one does: `fail` (it and the
        rest are canceled), `ignore` (it runs, the param None), `continue` (it runs, the param
        `{"failed": id, "status": ...}`). The chain's id (`workflow()`) is its last job's.

        Raises:
            WorkflowError, and `enqueue_many`'s errors: bad input; nothing written.
        """
        plan = self._planner.chain(Chain(steps, pass_result=pass_result, policy=policy), time.time())
        self._write_workflow(plan)
        return plan.job_ids

    def group(
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
        """Enqueue jobs (or chains) side by side, and callbacks for when they are done; the group id.

        Each callback is a registered job (or a chain) and runs once: `on_success` when every
        child has settled and none failed the group, `on_failure` when one did (at once),
        `on_complete` in both cases. It gets the group's results by job id (bounded: see the
        queue README) as the param `results_param` names (None: no param). A child that fails for
        good, is canceled or expires fails the group (`policy="fail"`), is ignored (`"ignore"`)
        or is listed in the results while the group goes on (`"continue"`); an `Edge` sets one
        child's own. With `group_id`, a repeated call writes nothing and returns the same id.

        Raises:
            WorkflowError, UnknownJobError (a callback not registered), and `enqueue_many`'s
            errors: bad input; nothing written.
        """
        callbacks = {"on_success": on_success, "on_failure": on_failure, "on_complete": on_complete}
        plan = self._planner.group(children, callbacks, policy, group_id, results_param, time.time())
        self._write_workflow(plan)
        return plan.top

    def workflow(self, workflow_id: str) -> WorkflowView:
        """A snapshot of a group, or of a chain (by its last job's id).

        Raises:
            WorkflowNotFoundError: no such workflow (or its record expired). InvalidJobIdError.
        """
        return read_workflow(self.connection, self._guard, workflow_id)

    def wait_workflow(self, workflow_id: str, timeout: float) -> WorkflowView:
        """Block until the workflow is decided and every member has settled; its view.

        Raises:
            WaitTimeoutError: not yet after `timeout` seconds. WorkflowNotFoundError.
        """
        deadline = time.monotonic() + timeout
        record = keys.key("wf", keys.check_job_id(workflow_id, scheduled=False))
        fields = [WorkflowField.STATE, WorkflowField.CLOSED_AT]
        while True:  # two fields a poll: a group's whole view reads every pending member
            state, closed = self._guard.call(lambda: self.connection.hmget(record, fields))
            if state is None:
                raise WorkflowNotFoundError(workflow_id)
            if closed is not None and text(state) != WorkflowState.OPEN:
                return self.workflow(workflow_id)
            if time.monotonic() > deadline:
                raise WaitTimeoutError(workflow_id, timeout, text(state))
            time.sleep(0.05)

    @cached_property
    def _planner(self) -> Planner:
        return Planner(self._builder)

    @cached_property
    def _workflow_script(self) -> FastScript:
        return FastScript(self.connection, lua.source("workflow"))

    def _write_workflow(self, plan: WorkflowPlan) -> None:
        if plan.needs_worker:
            self._check_known(plan.needs_worker)
        args = workflow_args(plan, tracing.current_carrier())
        try:  # a call repeated (a lost reply, too few replicas) finds the workflow written: 'exists'
            reply = self._guard.call(lambda: self._run(self._workflow_script, args))
        except QueueReplicationError as exc:
            raise workflow_not_replicated(exc, plan) from exc
        written_workflow(plan, reply)
