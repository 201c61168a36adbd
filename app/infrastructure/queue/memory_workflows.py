"""The workflow engine of `lua/lib_workflows.lua` and `lua/workflow.lua`, on the in-memory store.

Same rules, same order: a member settles once (it leaves the index in the step that counts it),
an outcome is decided once, a callback is released or canceled once. The contract suite runs the
same workflow cases against this and Redis.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from app.infrastructure.queue.errors import WorkflowError
from app.infrastructure.queue.record import rq_time
from app.infrastructure.queue.schema import (
    GROUPS,
    TRANSITIONS,
    Field,
    JobStatus,
    WorkflowField,
    WorkflowState,
)
from app.infrastructure.queue.workflow_view import WorkflowView, build_view, member_state
from app.infrastructure.queue.workflows import WorkflowPlan

if TYPE_CHECKING:
    from app.infrastructure.queue.memory_store import MemoryStore

_S = JobStatus
_W = WorkflowField
_LIVE = {status.value for status in GROUPS["live"]}
_ROLES = (_W.ON_COMPLETE, _W.ON_SUCCESS, _W.ON_FAILURE)
EXPIRED = _W.EXPIRED
Event = dict[str, Any]


class MemoryWorkflows:
    """Workflow records, pending members, kept results and failures, and the member index."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.records: dict[str, dict[str, str]] = {}
        self.members: dict[str, dict[str, str]] = {}
        self.results: dict[str, dict[str, str]] = {}
        self.failures: dict[str, dict[str, str]] = {}
        self.index: dict[str, str] = {}

    # -- writing a workflow (workflow.lua) ----------------------------------------------------

    def create(self, plan: WorkflowPlan) -> bool:
        """Write `plan` all or nothing; False when its top workflow exists (a repeated call).

        Raises:
            WorkflowError: a workflow id or a live job's id is taken; nothing was written.
        """
        if plan.top in self.records:
            return False
        for workflow in plan.workflows:
            if workflow["id"] in self.records:
                raise WorkflowError(f"workflow id {workflow['id']!r} is taken", workflow["id"])
        for job in plan.jobs:
            status = self.store.status(job.spec.job_id)
            if status in _LIVE:
                raise WorkflowError(f"job {job.spec.job_id!r} is already {status}; a workflow's jobs are new")
        for job in plan.jobs:
            self.store.write_workflow_job(job)
            if job.workflow:
                self.index[job.spec.job_id] = job.workflow
        stamp = rq_time(self.store.clock())
        for w in plan.workflows:
            record = {_W.KIND: w["kind"], _W.STATE: WorkflowState.OPEN, _W.TOTAL: str(len(w["members"])),
                      _W.CREATED_AT: stamp, _W.BUDGET: str(w["budget"]), **dict(w["roles"])}  # fmt: skip
            record.update({k: str(w[k]) for k in ("keep_ok", "keep_failed")})
            record.update({k: w[k] for k in ("parent", "last") if w[k]})
            self.records[w["id"]] = record
            self.members[w["id"]] = {member: policy for member, policy in w["members"]}
        return True

    # -- the engine (lib_workflows.lua) -------------------------------------------------------

    def job_ended(self, job_id: str, outcome: str, value: str | None = None) -> None:
        """Job `job_id` ended for good: its dependents and its workflow learn it (`wf_job_ended`)."""
        self._settle([{"job": job_id, "outcome": outcome, "value": value}])

    def vanished(self, job_id: str) -> None:
        """Its TTL ran out while it waited: a pending member settles as expired (`wf_vanished`)."""
        if job_id in self.index:
            self.job_ended(job_id, EXPIRED)

    def _settle(self, events: list[Event]) -> None:
        i = 0
        while i < len(events):
            event = events[i]
            i += 1
            if "job" in event:
                if event["outcome"] != _S.FINISHED.value:
                    self._dependents(event, events)
                wid = self.index.pop(event["job"], None)
                if wid is not None:
                    events.append({"wf": wid, "member": event["job"], "outcome": event["outcome"],
                                   "value": event.get("value")})  # fmt: skip
            else:
                self._member(event, events)

    def _dependents(self, event: Event, events: list[Event]) -> None:
        store = self.store
        for dep in sorted(store.dependents.pop(event["job"], set())):
            if not TRANSITIONS["cascade"].allows(store.status(dep)):
                continue
            policy = store.field(dep, Field.DEP_POLICY)
            if policy in ("ignore", "continue"):
                payload: dict[str, Any] = {"kind": "result"}
                if policy == "continue":
                    payload = {"kind": "failed", "job_id": event["job"], "status": event["outcome"]}
                store.give_input(dep, json.dumps(payload))
                store.release_waiting(dep)
            else:
                store.cancel_waiting(dep, f"dependency {event['job']} did not finish")
                events.append({"job": dep, "outcome": _S.CANCELED.value})

    def _member(self, event: Event, events: list[Event]) -> None:
        wid, member, outcome = event["wf"], event["member"], event["outcome"]
        members = self.members.get(wid, {})
        policy = members.pop(member, None)
        if policy is None:
            return
        fails = self._record(wid, member, outcome, event.get("value"), policy.removeprefix("wf:"))
        record = self.records[wid]
        if record[_W.STATE] == WorkflowState.OPEN:
            if fails:
                self._decide(wid, WorkflowState.FAILED, member, events)
            elif not members:
                self._decide(wid, WorkflowState.SUCCEEDED, None, events)
        if not members:
            record[_W.CLOSED_AT] = rq_time(self.store.clock())

    def _record(self, wid: str, member: str, outcome: str, value: str | None, policy: str) -> bool:
        record = self.records[wid]
        record[outcome] = str(int(record.get(outcome, "0")) + 1)
        if outcome == _S.FINISHED.value:
            value = value or ""
            used, size = int(record.get(_W.RESULT_BYTES, "0")), len(member) + len(value)
            if used + size <= int(record[_W.BUDGET]):
                self.results.setdefault(wid, {})[member] = value
                record[_W.RESULT_BYTES] = str(used + size)
            else:
                record[_W.TRUNCATED] = "1"
            return False
        if policy == "ignore":
            record[_W.IGNORED] = str(int(record.get(_W.IGNORED, "0")) + 1)
            return False
        listed = self.failures.setdefault(wid, {})
        if len(listed) < 1000:
            listed[member] = outcome
        else:
            record[_W.TRUNCATED] = "1"
        return policy == "fail"

    def _decide(self, wid: str, state: str, first_failure: str | None, events: list[Event]) -> None:
        record = self.records[wid]
        record[_W.STATE], record[_W.ENDED_AT] = state, rq_time(self.store.clock())
        if first_failure:
            record[_W.FIRST_FAILURE] = first_failure
        for role in _ROLES:
            job_id = record.get(role)
            if not job_id or not TRANSITIONS["release"].allows(self.store.status(job_id)):
                continue
            if role == _W.ON_COMPLETE or (role == _W.ON_SUCCESS) == (state == WorkflowState.SUCCEEDED):
                self.store.give_input(job_id, self._summary(wid))
                self.store.release_waiting(job_id)
            else:
                self.store.cancel_waiting(job_id, f"not needed: workflow {wid} {state} (this is its {role})")
                events.append({"job": job_id, "outcome": _S.CANCELED.value})
        parent = record.get(_W.PARENT)
        if parent:
            succeeded = state == WorkflowState.SUCCEEDED
            value = self.results.get(wid, {}).get(record.get(_W.LAST, "")) if succeeded else None
            outcome = _S.FINISHED.value if succeeded else _S.FAILED.value
            events.append({"wf": parent, "member": wid, "outcome": outcome, "value": value})

    def _summary(self, wid: str) -> str:
        record = self.records[wid]
        names = (_W.FINISHED, _W.FAILED, _W.STOPPED, _W.CANCELED, _W.EXPIRED, _W.IGNORED)
        counts = {name: int(record.get(name, "0")) for name in names}
        counts["pending"] = len(self.members.get(wid, {}))
        return json.dumps({
            "kind": "group", "workflow": wid, "state": record[_W.STATE], "total": int(record[_W.TOTAL]),
            "counts": counts, "results": self.results.get(wid, {}), "failures": self.failures.get(wid, {}),
            "truncated": record.get(_W.TRUNCATED) == "1", "first_failure": record.get(_W.FIRST_FAILURE),
        })  # fmt: skip

    # -- reading (workflow_view.py) -----------------------------------------------------------

    def view(self, wid: str) -> WorkflowView | None:
        record = self.records.get(wid)
        if record is None:
            return None
        states = []
        for member, policy in self.members.get(wid, {}).items():
            if policy.startswith("wf:"):
                sub = self.records.get(member, {})
                started = any(
                    member_state(self.store.status(step)) == "running"
                    for step in self.members.get(member, {})
                )
                states.append(
                    "running" if started or sub.get(_W.FINISHED) or sub.get(_W.FAILED) else "queued"
                )
            else:
                states.append(member_state(self.store.status(member)))
        callbacks = {role: (record[role], self.store.status(record[role])) for role in _ROLES[1:] + _ROLES[:1]
                     if role in record}  # fmt: skip
        return build_view(wid, record, states, callbacks, self.failures.get(wid, {}))
