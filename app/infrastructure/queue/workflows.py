"""Chains and groups: the values a producer passes (`Chain`, `Edge`), and the plan they become.

A chain runs its jobs one after another; a group runs its children (jobs or chains) side by side
and then its callbacks, which are registered jobs (or chains) created with it, waiting for its
outcome. Every request is validated here, before anything is written, and the whole workflow is
then written by one script (`lua/workflow.lua`); `workflow_args` builds that script's arguments,
for any adapter. The engine that settles members and decides outcomes is `lua/lib_workflows.lua`
(and its in-memory twin, `memory_workflows.py`). Semantics: the queue README, "Workflows".
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from app.infrastructure.queue.errors import InvalidOptionError, QueueReplicationError, WorkflowError
from app.infrastructure.queue.job_spec import JobSpec, JobSpecBuilder, spec_record
from app.infrastructure.queue.keys import JOB_ID_RE, check_job_id
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.schema import packer

#: What the end of a member that did not finish (failed for good, stopped, canceled, expired) does
#: to what waits on it: fails it (default), is ignored, or lets it go on with the failure listed.
Policy = Literal["fail", "ignore", "continue"]
POLICIES: tuple[str, ...] = ("fail", "ignore", "continue")
ROLES = ("on_success", "on_failure", "on_complete")
#: The most jobs one workflow may have: it is written in one script, all or nothing, which holds
#: Redis ~14 us per job (measured: 140 ms for 10,000 on a 2-core VM), so 50,000 hold it ~0.7 s,
#: well under `busy-reply-threshold`'s default 5 s.
MAX_WORKFLOW_JOBS = 50_000
_workflow_args = packer("workflow")
log = logging.getLogger("app.infrastructure.queue.rq_queue")  # the producers' logger


@dataclass(frozen=True)
class Edge:
    """A member with the policy of its edge: what its failure does to what comes after it (the next
    job of its chain) or to its group. `Edge(JobRequest(...), "continue")`."""

    item: JobRequest | Chain
    policy: Policy = "fail"


@dataclass(frozen=True, init=False)
class Chain:
    """Jobs run one after another, each once the one before finished. With `pass_result`, each
    job after the first gets the previous one's result as the param of that name. `policy` is the
    default of its edges (a step wrapped in an `Edge` has its own); the last job's failure is the
    chain's. Known by its last job's id."""

    steps: tuple[JobRequest | Edge, ...]
    pass_result: str | None = None
    policy: Policy = "fail"

    def __init__(
        self, steps: Iterable[JobRequest | Edge], *, pass_result: str | None = None, policy: Policy = "fail"
    ) -> None:
        if isinstance(steps, JobRequest | Edge | str | bytes | Mapping):
            raise WorkflowError(f"a chain takes a list of jobs, not a {type(steps).__name__}")
        object.__setattr__(self, "steps", tuple(steps))
        object.__setattr__(self, "pass_result", pass_result)
        object.__setattr__(self, "policy", policy)


Child = JobRequest | Chain | Edge
Callback = JobRequest | Chain


class PlannedJob(NamedTuple):
    """One job of a workflow: its spec and its part: the workflow it is a member of (''), the role it
    waits for as a callback (`on_success:<group id>`, ''), whether it takes an input, and the
    policy of the edge before it in its chain ('')."""

    spec: JobSpec
    workflow: str
    role: str
    wants_input: bool
    dep_policy: str


@dataclass
class WorkflowPlan:
    """What one call writes: the top workflow's id, its jobs, every workflow record it makes."""

    top: str
    jobs: list[PlannedJob] = field(default_factory=list)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    needs_worker: list[JobSpec] = field(default_factory=list)  # `require_worker=True`

    def document(self) -> str:
        """The script's `plan` argument (lua/workflow.lua)."""
        parts = [[j.workflow, j.role, 1 if j.wants_input else 0, j.dep_policy] for j in self.jobs]
        return json.dumps(
            {"top": self.top, "workflows": self.workflows, "jobs": parts}, separators=(",", ":")
        )

    @property
    def job_ids(self) -> list[str]:
        return [job.spec.job_id for job in self.jobs]


def workflow_args(plan: WorkflowPlan, trace: str = "") -> list[Any]:
    """ARGV of `lua/workflow.lua` for `plan` (`trace`: the producer's trace context)."""
    records = [value for job in plan.jobs for value in spec_record(job.spec, trace)]
    return _workflow_args(plan=plan.document(), count=len(plan.jobs), jobs=records)[1]  # type: ignore[no-any-return]


def check_reply(plan: WorkflowPlan, reply: list[Any]) -> bool:
    """Whether the script wrote the workflow (False: it existed already, the call was repeated).

    Raises:
        WorkflowError: an id was taken; nothing was written.
    """
    kind = _text(reply[0])
    if kind == "ok":
        return True
    if kind == "exists":
        return False
    if kind == "conflict":
        raise WorkflowError(f"workflow id {_text(reply[1])!r} is taken", _text(reply[1]))
    raise WorkflowError(
        f"job {_text(reply[1])!r} is already {_text(reply[2])}; a workflow's jobs are new", _text(reply[1])
    )


def written_workflow(plan: WorkflowPlan, reply: list[Any]) -> None:
    """Read the workflow script's reply (both producers): raise as `check_reply`, log a write."""
    if check_reply(plan, reply):
        log.info("workflow enqueued id=%s jobs=%d", plan.top, len(plan.jobs))


def workflow_not_replicated(exc: QueueReplicationError, plan: WorkflowPlan) -> QueueReplicationError:
    """Too few replicas acknowledged the workflow: the error names its jobs (a retry is safe)."""
    return QueueReplicationError(exc.url, str(exc.__cause__), tuple(plan.job_ids))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Planner:
    """Turns chains and groups into a `WorkflowPlan`, every job validated by the `JobSpecBuilder`."""

    def __init__(self, builder: JobSpecBuilder) -> None:
        self.builder = builder
        settings = builder.settings
        self._keep = {"budget": settings.max_result_bytes, "keep_ok": settings.result_ttl}
        self._keep["keep_failed"] = settings.failure_ttl

    def chain(self, chain: Chain, now: float) -> WorkflowPlan:
        """The plan of a chain alone: its id is its last job's.

        Raises:
            WorkflowError, InvalidOptionError, and `JobSpecBuilder.build`'s errors.
        """
        plan = WorkflowPlan("")
        plan.top = self._chain(plan, chain, "", now, first_input=None, role="")
        return self._checked(plan)

    def group(
        self,
        children: Iterable[Child],
        callbacks: Mapping[str, Callback | None],
        policy: Policy,
        group_id: str | None,
        results_param: str | None,
        now: float,
    ) -> WorkflowPlan:
        """The plan of a group, its children and its callbacks.

        Raises:
            WorkflowError, InvalidOptionError, UnknownJobError (a callback not registered), and
            `JobSpecBuilder.build`'s errors.
        """
        gid = _check_id("group_id", group_id) if group_id is not None else os.urandom(16).hex()
        _check_policy(policy)
        plan = WorkflowPlan(gid)
        members: list[list[str]] = []
        for child in _listed(children, "a group"):
            item, edge = _unwrap(child, policy)
            if isinstance(item, Chain):
                members.append([self._chain(plan, item, gid, now, None, ""), "wf:" + edge])
            else:
                spec = self._spec(plan, item, now, None, deferred=False)
                plan.jobs.append(PlannedJob(spec, gid, "", False, ""))
                members.append([spec.job_id, edge])
        roles = {}
        for role, callback in callbacks.items():
            if callback is not None:
                roles[role] = self._callback(plan, role, gid, callback, results_param, now)
        plan.workflows.insert(0, {"id": gid, "kind": "group", "parent": "", "last": "", "members": members,
                                  "roles": roles, **self._keep})  # fmt: skip
        return self._checked(plan)

    def _callback(
        self,
        plan: WorkflowPlan,
        role: str,
        gid: str,
        callback: Callback,
        results_param: str | None,
        now: float,
    ) -> str:
        label = f"{role}:{gid}"
        if isinstance(callback, Chain):
            self._chain(plan, callback, "", now, first_input=results_param, role=label)
            return plan.jobs[-len(callback.steps)].spec.job_id
        if not isinstance(callback, JobRequest):
            raise WorkflowError(f"{role} must be a JobRequest or a Chain, not {type(callback).__name__}")
        spec = self._spec(plan, callback, now, results_param, deferred=True)
        plan.jobs.append(PlannedJob(spec, "", label, results_param is not None, ""))
        return spec.job_id

    def _chain(
        self, plan: WorkflowPlan, chain: Chain, parent: str, now: float, first_input: str | None, role: str
    ) -> str:
        """Add `chain`'s jobs (each after the one before) and its record to `plan`; its id."""
        _check_policy(chain.policy)
        if chain.pass_result is not None:
            _check_param_name("pass_result", chain.pass_result)
        steps = _listed(chain.steps, "a chain")
        wid = _last_id(steps)
        members: list[list[str]] = []
        previous: tuple[str, str] | None = None  # (id, the policy of the edge after it)
        for index, step in enumerate(steps):
            item, edge = _unwrap(step, chain.policy)
            if isinstance(item, Chain):
                raise WorkflowError("a chain's step is a job (a JobRequest), not a chain")
            wanted = first_input if index == 0 else chain.pass_result
            spec = self._spec(plan, item, now, wanted, deferred=index > 0 or bool(role))
            if previous is not None:
                spec = spec._replace(depends_on=(previous[0],))
            last = index == len(steps) - 1
            plan.jobs.append(PlannedJob(spec, wid, role if index == 0 else "", wanted is not None,
                                        previous[1] if previous else ""))  # fmt: skip
            members.append([spec.job_id, "fail" if last else edge])
            previous = (spec.job_id, edge)
        plan.workflows.append({"id": wid, "kind": "chain", "parent": parent, "last": wid, "members": members,
                               "roles": {}, **self._keep})  # fmt: skip
        return wid

    def _spec(
        self, plan: WorkflowPlan, request: object, now: float, input_param: str | None, deferred: bool
    ) -> JobSpec:
        if not isinstance(request, JobRequest):
            raise WorkflowError(f"a workflow's job is a JobRequest, not {type(request).__name__}")
        if request.options.get("depends_on") is not None:
            raise InvalidOptionError(
                "depends_on", request.options["depends_on"], "a workflow orders its jobs itself"
            )
        if deferred and (request.options.get("delay") is not None or request.options.get("at") is not None):
            raise InvalidOptionError("delay", request.options.get("delay") or request.options.get("at"),
                                     "only a workflow's first jobs may be delayed")  # fmt: skip
        if input_param is not None:
            _check_param_name("results_param", input_param)
        spec = self.builder.build(request, now, input_param)
        if request.options.get("require_worker"):
            plan.needs_worker.append(spec)
        return spec

    def _checked(self, plan: WorkflowPlan) -> WorkflowPlan:
        if len(plan.jobs) > MAX_WORKFLOW_JOBS:
            raise WorkflowError(f"{len(plan.jobs)} jobs, over the bound of {MAX_WORKFLOW_JOBS}; split it")
        seen: set[str] = set()
        for job in plan.jobs:
            if job.spec.job_id in seen:
                raise WorkflowError(f"job id {job.spec.job_id!r} is used twice", job.spec.job_id)
            seen.add(job.spec.job_id)
        ids = [w["id"] for w in plan.workflows]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise WorkflowError(
                f"workflow id {twice!r} is used twice (a group's id and a chain's last job)", twice
            )
        return plan


def _listed(items: Iterable[Any], what: str) -> list[Any]:
    if isinstance(items, JobRequest | Chain | Edge | str | bytes | Mapping):
        raise WorkflowError(f"{what} takes a list of jobs, not a {type(items).__name__}")
    found = list(items)
    if not found:
        raise WorkflowError(f"{what} needs at least one job")
    return found


def _unwrap(item: object, default: str) -> tuple[Any, str]:
    if isinstance(item, Edge):
        _check_policy(item.policy)
        if isinstance(item.item, Edge):
            raise WorkflowError("an Edge holds a JobRequest or a Chain, not another Edge")
        return item.item, item.policy
    if not isinstance(item, JobRequest | Chain):
        raise WorkflowError(f"a member is a JobRequest, a Chain or an Edge, not {type(item).__name__}")
    return item, default


def _last_id(steps: list[Any]) -> str:
    """The last job's id, given or drawn now: the chain's id is known before its jobs are built."""
    wrapped = steps[-1]
    last = wrapped.item if isinstance(wrapped, Edge) else wrapped
    if not isinstance(last, JobRequest):
        raise WorkflowError("a chain's step is a job (a JobRequest), not a chain")
    given = last.options.get("job_id")
    if given is not None:
        return check_job_id(given, scheduled=False)
    drawn = os.urandom(16).hex()
    named = JobRequest(last.job_name, last.params, **{**last.options, "job_id": drawn})
    steps[-1] = Edge(named, wrapped.policy) if isinstance(wrapped, Edge) else named
    return drawn


def _check_policy(policy: object) -> None:
    if policy not in POLICIES:
        raise InvalidOptionError("policy", policy, f"must be one of {', '.join(POLICIES)}")


def _check_param_name(option: str, name: object) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidOptionError(option, name, "must be a param name (an identifier)")


def _check_id(option: str, value: object) -> str:
    if not isinstance(value, str) or not JOB_ID_RE.fullmatch(value):
        raise InvalidOptionError(option, value, "ids must match [A-Za-z0-9_-]{1,128}")
    return value
