"""`InMemoryQueue`: the `JobQueue` port without Redis, for the application's own unit tests.

It is the real thing on an in-memory store: requests are validated by the same `JobSpecBuilder`,
stored in rq's job hash fields by `MemoryStore` (which follows the schema's transitions as the
scripts do), run by the worker's own `JobRunner`, settled by the worker's own `settle` (retries,
backoff, permanent errors), and read back through the same `job_view`. A contract suite runs one
set of cases against this and `RQQueue`. Jobs run when asked (`run_pending()`), or at once
(`run_inline=True`), in the calling thread. Time is a clock you can move (`advance`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from app.config import PRIORITIES, Settings
from app.infrastructure.queue.errors import (
    JobNotFoundError,
    JobStateError,
    NoWorkerError,
    WaitTimeoutError,
    WorkflowNotFoundError,
)
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.job_spec import JobSpec, JobSpecBuilder
from app.infrastructure.queue.keys import check_job_id
from app.infrastructure.queue.memory_store import MemoryStore
from app.infrastructure.queue.port import NO_PARAMS, JobRequest, JobView
from app.infrastructure.queue.record import JobRecord
from app.infrastructure.queue.schema import Ending
from app.infrastructure.queue.store import Claim, ProgressSink, new_execution_id
from app.infrastructure.queue.views import job_view
from app.infrastructure.queue.workflow_view import WorkflowView
from app.infrastructure.queue.workflows import Callback, Chain, Child, Edge, Planner, Policy, WorkflowPlan

if TYPE_CHECKING:
    from typing import Unpack

    from app.infrastructure.queue.port import EnqueueOptions


class InMemoryQueue:
    """A `JobQueue` in memory. `enqueued` lists every created job's spec, in order."""

    def __init__(
        self,
        settings: Settings | None = None,
        registry: JobRegistry | None = None,
        *,
        run_inline: bool = False,
        clock: Callable[[], float] | None = None,
        worker_registry: JobRegistry | None = None,
    ) -> None:
        """`worker_registry` is what its worker knows (default: `registry`): a unit test can play
        a rolling deploy, workers a version behind the producer."""
        from app import bootstrap  # the composition root builds what was not given (it imports us)

        self.settings = settings if settings is not None else bootstrap.default_settings()
        self.registry = registry or bootstrap.registry_for(self.settings)
        self.worker_registry = worker_registry or self.registry
        self.serializer = bootstrap.serializer_for(self.settings)
        self.run_inline = run_inline
        self._builder = JobSpecBuilder(self.settings, self.registry, self.serializer)
        self._offset = 0.0
        self._clock = clock or time.time
        self.store = MemoryStore([self.settings.queue_for(p) for p in PRIORITIES], self.now)
        self.enqueued: list[JobSpec] = []
        self._runner: Any = None

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move this queue's clock forward (scheduled jobs, retries, TTLs)."""
        self._offset += seconds

    def enqueue(
        self, job_name: str, params: Mapping[str, Any] = NO_PARAMS, **options: Unpack[EnqueueOptions]
    ) -> str:
        """See `JobQueue.enqueue`."""
        return self.enqueue_many([JobRequest(job_name, params, **options)])[0]

    def enqueue_many(self, requests: Iterable[JobRequest]) -> list[str]:
        """See `JobQueue.enqueue_many`: validated first, then written all or nothing."""
        now = self.now()
        requests = list(requests)
        specs = [self._builder.build(request, now) for request in requests]
        for spec, request in zip(specs, requests, strict=True):
            if request.options.get("require_worker") and not self._knows(spec):
                raise NoWorkerError(spec.job_name, spec.version, spec.queue)
        self.enqueued += self.store.create(specs)
        if self.run_inline:
            self.run_pending()
        return [spec.job_id for spec in specs]

    def get(self, job_id: str) -> JobView:
        """See `JobQueue.get`."""
        found = self.store.read(check_job_id(job_id))
        if found is None:
            raise JobNotFoundError(job_id)
        fields, result = found
        return job_view(JobRecord(job_id, fields), result, self.serializer, self.settings.max_payload_bytes)

    def wait(self, job_id: str, timeout: float) -> JobView:
        """Runs pending jobs (this is the worker), then as `JobQueue.wait`; time does not pass."""
        self.run_pending()
        view = self.get(job_id)
        if not view.is_final:
            raise WaitTimeoutError(job_id, timeout, view.status.value)
        return view

    def cancel(self, job_id: str) -> None:
        """See `JobQueue.cancel`."""
        self.store.cancel(check_job_id(job_id))

    def stop(self, job_id: str) -> None:
        """In memory a job is never running between calls: stopping is always too late or too early."""
        raise JobStateError(job_id, self.get(job_id).status.value, "stop")

    def run_pending(self) -> int:
        """Run every job that is queued or due, highest priority first, until none is left."""
        ran = 0
        while (claim := self.store.claim(new_execution_id()).claim()) is not None:
            self._run(claim)
            ran += 1
        return ran

    def _run(self, claim: Claim) -> None:
        from app.worker.execution import settle  # the worker's own rules; it imports us for tests

        outcome = self._job_runner().run(claim)
        settled = settle(claim.record, outcome)
        if settled.ending is Ending.FINISHED:
            self.store.finish(claim, outcome.return_blob, None)
        else:
            self.store.fail(claim, settled.ending, settled.retry_in, settled.error)

    def chain(
        self, steps: Iterable[JobRequest | Edge], *, pass_result: str | None = None, policy: Policy = "fail"
    ) -> list[str]:
        """See `RQQueue.chain`."""
        plan = Planner(self._builder).chain(Chain(steps, pass_result=pass_result, policy=policy), self.now())
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
        """See `RQQueue.group`."""
        callbacks = {"on_success": on_success, "on_failure": on_failure, "on_complete": on_complete}
        plan = Planner(self._builder).group(children, callbacks, policy, group_id, results_param, self.now())
        self._write_workflow(plan)
        return plan.top

    def workflow(self, workflow_id: str) -> WorkflowView:
        """See `RQQueue.workflow`."""
        view = self.store.workflows.view(check_job_id(workflow_id, scheduled=False))
        if view is None:
            raise WorkflowNotFoundError(workflow_id)
        return view

    def wait_workflow(self, workflow_id: str, timeout: float) -> WorkflowView:
        """Runs pending jobs, then as `RQQueue.wait_workflow`; time does not pass."""
        self.run_pending()
        view = self.workflow(workflow_id)
        if not view.is_final:
            raise WaitTimeoutError(workflow_id, timeout, view.state)
        return view

    def _write_workflow(self, plan: WorkflowPlan) -> None:
        for spec in plan.needs_worker:
            if not self._knows(spec):
                raise NoWorkerError(spec.job_name, spec.version, spec.queue)
        if self.store.workflows.create(plan):
            self.enqueued += [job.spec for job in plan.jobs]
        if self.run_inline:
            self.run_pending()

    def _knows(self, spec: JobSpec) -> bool:
        """Whether its one worker (always live, every queue) knows the job: name and params version."""
        functions = self._job_runner().functions
        return spec.job_name in functions and self.worker_registry.version(spec.job_name) == spec.version

    def _job_runner(self) -> Any:
        if self._runner is None:
            from app.worker.execution import JobRunner
            from app.worker.preflight import resolve_jobs

            # A broken path hands its jobs back, as a worker that does not know them would.
            functions, _ = resolve_jobs(self.worker_registry)
            self._runner = JobRunner(
                self.settings,
                self.worker_registry,
                self.serializer,
                functions,
                self._progress,
                timeouts=False,
            )
        return self._runner

    def _progress(self, claim: Claim) -> ProgressSink:
        def sink(done: int, total: int, message: str) -> None:
            found = self.store.read(claim.job_id)
            meta = JobRecord(claim.job_id, found[0]).load_meta(self.serializer) if found else {}
            meta["progress"] = {"done": done, "total": total, "message": message}
            self.store.write_meta(claim.job_id, self.serializer.dumps(meta))

        return sink
