"""The job model, defined once: statuses, transitions, attempt endings, the job hash's fields,
the Redis keys and the arguments of every script.

Python reads these tables; the Lua scripts name them (`S.queued`, `F.status`, `K.job(id)`,
`CAN.claim(status)`, `A.job_id`) and `lua.py` expands each name when a script is built: a name
not defined here stops the load. A new status or rule is one edit here plus the code that uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

#: The longest timeout, TTL or delay a job may have (ten years). Past this, timers overflow
#: (`signal.alarm`, `select`): the producer refuses more, and a worker reads more as unset.
MAX_SECONDS = 10 * 365 * 24 * 3600


class JobStatus(str, Enum):
    """Where a job is in its life (rq's names). The last four are final."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    DEFERRED = "deferred"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        return self in GROUPS["final"]


class Ending(str, Enum):
    """How one attempt was recorded: the worker's outcome kinds, and what the scripts take."""

    FINISHED = "finished"
    RETRY = "retry"  # failed, retried after its backoff
    REQUEUE = "requeue"  # not run to an end (cold shutdown, lost claim): back, no retry used
    FAILED = "failed"
    STOPPED = "stopped"
    SNOOZE = "snooze"  # the job asked to be run later (RateLimited): scheduled, no attempt used
    HANDBACK = "handback"  # a job this worker does not know: back, unfailed, for a worker that does


_S = JobStatus
#: Named sets of statuses (`IN.live(status)` in Lua).
GROUPS: Mapping[str, frozenset[JobStatus]] = MappingProxyType(
    {
        # A live job owns its id: enqueueing that id again returns it (the idempotency key).
        "live": frozenset({_S.QUEUED, _S.SCHEDULED, _S.DEFERRED, _S.STARTED, _S.FINISHED}),
        "final": frozenset({_S.FINISHED, _S.FAILED, _S.CANCELED, _S.STOPPED}),
        # Ended for good, without success: its id may start a new run; it fails its dependents.
        "doomed": frozenset({_S.FAILED, _S.CANCELED, _S.STOPPED}),
        # Not run to its end yet: a schedule's previous run in one of these overlaps the next tick.
        "pending": frozenset({_S.QUEUED, _S.SCHEDULED, _S.DEFERRED, _S.STARTED}),
    }
)


@dataclass(frozen=True)
class Transition:
    """A change of status: allowed from `sources` ('' = no job yet), ending in one of `targets`."""

    sources: frozenset[str]
    targets: frozenset[JobStatus]

    def allows(self, status: str | None) -> bool:
        return (status or "") in self.sources


def _t(sources: set[JobStatus | str], targets: set[JobStatus]) -> Transition:
    return Transition(frozenset(getattr(s, "value", s) for s in sources), frozenset(targets))


#: Every status change a script makes (`CAN.claim(status)` in Lua), by name.
TRANSITIONS: Mapping[str, Transition] = MappingProxyType(
    {
        "create": _t({"", *GROUPS["doomed"]}, {_S.QUEUED, _S.SCHEDULED, _S.DEFERRED}),
        "promote": _t({_S.SCHEDULED}, {_S.QUEUED}),  # a scheduled job is due
        "release": _t({_S.DEFERRED}, {_S.QUEUED}),  # its dependencies finished
        "claim": _t({_S.QUEUED}, {_S.STARTED}),
        "finish": _t({_S.STARTED}, {_S.FINISHED}),
        "retry": _t({_S.STARTED}, {_S.QUEUED, _S.SCHEDULED}),
        "requeue": _t({_S.STARTED}, {_S.QUEUED}),
        "fail": _t({_S.STARTED}, {_S.FAILED, _S.STOPPED}),
        "reap": _t({_S.STARTED}, {_S.QUEUED, _S.FAILED}),  # its worker died
        "snooze": _t({_S.STARTED}, {_S.SCHEDULED}),  # RateLimited(retry_after): later, no attempt used
        "cancel": _t({_S.QUEUED, _S.SCHEDULED, _S.DEFERRED}, {_S.CANCELED}),
        "cascade": _t({_S.DEFERRED}, {_S.CANCELED}),  # a dependency can never finish
        "resubmit": _t({_S.FAILED, _S.STOPPED}, {_S.QUEUED}),  # `taskq failed requeue`
        "purge": _t({_S.FAILED, _S.STOPPED}, set()),  # `taskq failed purge`: deleted
        "handback": _t({_S.STARTED}, {_S.SCHEDULED}),  # its worker does not know it: no attempt used
    }
)

#: rq's result types in `rq:results:<id>` (rq.results.Result.Type), and the fields of an entry.
RESULT_TYPES: Mapping[str, int] = MappingProxyType({"successful": 1, "failed": 2, "stopped": 3})
RESULT_FIELDS = MappingProxyType(
    {name: name for name in ("type", "worker_name", "return_value", "exc_string")}
)


class Field:
    """The fields of the job hash `rq:job:<id>`: rq's names, then ours (`taskq_`)."""

    STATUS = "status"
    CREATED_AT = "created_at"
    ENQUEUED_AT = "enqueued_at"
    STARTED_AT = "started_at"
    ENDED_AT = "ended_at"
    LAST_HEARTBEAT = "last_heartbeat"
    DATA = "data"
    ORIGIN = "origin"
    DESCRIPTION = "description"
    TIMEOUT = "timeout"
    RESULT_TTL = "result_ttl"
    FAILURE_TTL = "failure_ttl"
    TTL = "ttl"
    RETRIES_LEFT = "retries_left"
    RETRY_INTERVALS = "retry_intervals"
    META = "meta"
    WORKER_NAME = "worker_name"
    EXC_INFO = "exc_info"
    DEPENDENCY_ID = "dependency_id"
    DEPENDENCY_IDS = "dependency_ids"
    AT_FRONT = "enqueue_at_front"
    AT_FRONT_ON_RETRY = "enqueue_at_front_on_retry"
    SUCCESS_CALLBACK = "success_callback_name"
    FAILURE_CALLBACK = "failure_callback_name"
    STOPPED_CALLBACK = "stopped_callback_name"
    ATTEMPTS = "taskq_attempts"
    EXECUTION = "taskq_execution"  # the id of the execution that owns the job now: fences writes
    REASON = "taskq_reason"
    TRACE = "taskq_trace"
    SIGNATURE = "taskq_sig"  # the data's HMAC tag, in a field of its own: keeps small hashes compact
    LIMIT_KEY = "taskq_limit_key"  # the key its per-key limits count by (`enqueue(limit_key=...)`)
    SLOTS = "taskq_slots"  # the concurrency slots its execution holds, released when it ends
    PARAMS_VERSION = "taskq_params_version"  # the registry entry's version at enqueue (absent: 1)
    UNKNOWN_SINCE = "taskq_unknown_since"  # epoch seconds a worker first handed it back
    # Workflows (workflows.py): the workflow a job is a member of, the role it waits for in one
    # (a callback: `on_success`, ...), what the failure of the job before it in a chain does to it,
    # and the input a workflow hands it (the previous result, a group's results) when it is due.
    WORKFLOW = "taskq_wf"
    WF_ROLE = "taskq_wf_role"
    DEP_POLICY = "taskq_dep_policy"
    WANTS_INPUT = "taskq_wants_input"
    INPUT = "taskq_input"


class WorkerField:
    """The fields of a worker's hash `rq:worker:<name>` that we write (rq writes the rest)."""

    STATE = "state"
    CURRENT_JOB = "current_job"
    LAST_HEARTBEAT = "last_heartbeat"
    WORKING_TIME = "current_job_working_time"
    SUCCESSFUL = "successful_job_count"
    FAILED = "failed_job_count"
    TOTAL_WORKING_TIME = "total_working_time"
    TASKQ = "taskq_worker"  # only taskq's workers have it: one without it is a plain rq worker
    CONCURRENCY = "taskq_concurrency"  # `--concurrency N` workers: N (jobs at once); absent: 1
    BIRTH = "birth"  # written by rq's registration: a hash without it was not registered


class ScheduleField:
    """The fields of a schedule's state hash `taskq:schedule:<name>` (no expiry: it outlives jobs)."""

    LAST_TICK = "last_tick"  # the last tick fired (or skipped), in epoch seconds
    LAST_TICK_AT = "last_tick_at"  # when it was fired, by Redis's clock
    LAST_JOB = "last_job"  # the id of the last job it enqueued
    ENQUEUED = "enqueued"
    SKIPPED = "skipped"  # ticks that came while the previous run was pending (overlap="skip")
    MISSED = "missed"  # ticks older than the catch-up window when a worker came to them


class WorkflowField:
    """The fields of a workflow's hash `taskq:wf:<id>` (no expiry while it has members pending).

    Its members' outcomes are counted under their statuses' names (`finished`, `failed`,
    `stopped`, `canceled`) and `expired` (a member whose TTL ran out before it started)."""

    KIND = "kind"  # group | chain
    STATE = "state"  # WorkflowState
    TOTAL = "total"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELED = "canceled"
    EXPIRED = "expired"
    IGNORED = "ignored"  # failures whose edge says `ignore`: not listed, not the workflow's
    PARENT = "parent"  # the workflow it is a member of (a chain in a group)
    LAST = "last"  # a chain's last job: its result is the chain's
    ON_SUCCESS = "on_success"  # the ids of the callbacks (jobs waiting, deferred, for the outcome)
    ON_FAILURE = "on_failure"
    ON_COMPLETE = "on_complete"
    BUDGET = "budget"  # bytes of results kept for the callbacks, at most
    RESULT_BYTES = "result_bytes"
    TRUNCATED = "truncated"  # '1': some results (or failures) did not fit and are only counted
    FIRST_FAILURE = "first_failure"
    CREATED_AT = "created_at"
    ENDED_AT = "ended_at"  # when its outcome was decided
    CLOSED_AT = "closed_at"  # when its last member settled: from then on its keys expire
    KEEP_OK = "keep_ok"  # seconds its record is kept once closed, succeeded / failed
    KEEP_FAILED = "keep_failed"
    SWEEP_CURSOR = "sweep_cursor"


class WorkflowState:
    """A workflow's outcome: open until decided, once (`succeeded` or `failed`)."""

    OPEN = "open"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WorkerState:
    """What a worker's hash says it is doing (rq's words, which `rq info` shows)."""

    STARTED = "started"
    BUSY = "busy"
    IDLE = "idle"
    SUSPENDED = "suspended"


def _names(namespace: type) -> Mapping[str, str]:
    return MappingProxyType({name.lower(): v for name, v in vars(namespace).items() if name.isupper()})


FIELDS = _names(Field)
WORKER_FIELDS = _names(WorkerField)
WORKER_STATES = _names(WorkerState)
SCHEDULE_FIELDS = _names(ScheduleField)
WORKFLOW_FIELDS = _names(WorkflowField)
WORKFLOW_STATES = _names(WorkflowState)

#: Every key the scripts touch: rq's data model (`rq:`), then ours (`taskq:`). `{}` is the id or
#: queue name; a template without one is a single key. The one place to change the key layout.
KEYS: Mapping[str, str] = MappingProxyType(
    {
        "job": "rq:job:{}",
        "dependents": "rq:job:{}:dependents",
        "dependencies": "rq:job:{}:dependencies",
        "results": "rq:results:{}",
        "executions": "rq:executions:{}",
        "queue": "rq:queue:{}",
        "intermediate": "rq:queue:{}:intermediate",
        # Scored by MINUS the heartbeat deadline: out of rq's cleanup, which takes [0, now] (reap.lua).
        "started": "rq:wip:{}",
        "finished": "rq:finished:{}",
        "failed": "rq:failed:{}",
        "deferred": "rq:deferred:{}",
        "scheduled": "rq:scheduled:{}",
        "canceled": "rq:canceled:{}",
        "worker": "rq:worker:{}",
        "pubsub": "rq:pubsub:{}",  # a worker's command channel
        "queues": "rq:queues",
        "workers": "rq:workers",
        "suspended": "rq:suspended",
        "wake": "taskq:wake:{}",  # one token per pushed job; idle workers block on it
        "maintenance": "taskq:maintenance:{}",
        "paused": "taskq:paused",  # the queues no worker claims from (`taskq pause QUEUE`)
        "slots": "taskq:slots:{}",  # a limit's running executions (by job name, or name and key)
        "rate": "taskq:rate:{}",  # a rate limit's recent starts
        "limit_wait": "taskq:limit-wait:{}",  # jobs over a limit, set aside until it lets them
        "limit_blocked": "taskq:limit-blocked",  # waiting lists and held keys' groups, by when to look again
        "schedule": "taskq:schedule:{}",  # a schedule's last tick, last job, skipped and missed
        # Jobs with a limit key wait in their key's group (`<queue>:<key>`), and the keys of a
        # queue take turns (the ring: keys with jobs that no limit holds back): round-robin.
        "group": "taskq:group:{}",
        "ring": "taskq:ring:{}",
        "groups": "taskq:groups:{}",  # every key of a queue with jobs in its group
        "unknown": "taskq:unknown:{}",  # handed-back ids, scored by their attempts then (a run adds one)
        "metrics_leader": "taskq:metrics-leader",  # the one worker exporting cluster-wide gauges
        "pruned": "taskq:pruned:{}",  # failed jobs deleted over QUEUE_MAX_FAILED, ever, per queue
        # Workflows (chains, groups; not the limit groups above): a workflow's record, its
        # members not settled yet (id -> the policy of its edge), the results and failures kept
        # for its callbacks; every pending member's workflow (even once its job hash expired),
        # the workflows with members pending (for the sweep), and the sweep's lock.
        "wf": "taskq:wf:{}",
        "wf_members": "taskq:wf-members:{}",
        "wf_results": "taskq:wf-results:{}",
        "wf_failures": "taskq:wf-failures:{}",
        "wf_index": "taskq:wf-index",
        "wf_live": "taskq:wf-live",
        "wf_sweep": "taskq:wf-sweep",
    }
)

#: The producer's record of one new job, in the order the scripts read it, and the job hash
#: fields each value fills ('' values are not written). Followed by the ids it depends on.
JOB_RECORD: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("job_id", ()),
    ("queue", (Field.ORIGIN,)),
    ("run_at", ()),  # at this epoch second (Redis's clock), '' = now or run_in
    ("run_in", ()),  # this many seconds after the enqueue, by Redis's clock; '' = now or run_at
    ("ttl", (Field.TTL,)),
    ("data", (Field.DATA,)),
    ("sig", (Field.SIGNATURE,)),  # the HMAC tag of `data` when signing is on
    ("description", (Field.DESCRIPTION,)),
    ("timeout", (Field.TIMEOUT,)),
    ("result_ttl", (Field.RESULT_TTL,)),
    ("failure_ttl", (Field.FAILURE_TTL,)),
    ("retries", (Field.RETRIES_LEFT,)),
    ("retry_intervals", (Field.RETRY_INTERVALS,)),
    ("meta", (Field.META,)),
    ("trace", (Field.TRACE,)),
    ("limit_key", (Field.LIMIT_KEY,)),
    ("version", (Field.PARAMS_VERSION,)),
)
RECORD_NAMES = tuple(name for name, _ in JOB_RECORD)

#: The fields a claim reads and hands to the worker (a bounded read: a hash of 10,000 fields
#: costs no more). Status, attempts and ttl first: the claim script decides on them.
CLAIM_FIELDS = (
    Field.STATUS,
    Field.ATTEMPTS,
    Field.TTL,
    Field.ORIGIN,
    Field.DATA,
    Field.SIGNATURE,
    Field.DESCRIPTION,
    Field.TIMEOUT,
    Field.RESULT_TTL,
    Field.RETRIES_LEFT,
    Field.RETRY_INTERVALS,
    Field.DEPENDENCY_IDS,
    Field.SUCCESS_CALLBACK,
    Field.FAILURE_CALLBACK,
    Field.STOPPED_CALLBACK,
    Field.TRACE,
    Field.LIMIT_KEY,
    Field.PARAMS_VERSION,
    Field.UNKNOWN_SINCE,
    Field.INPUT,
)
#: Lists of names the scripts need whole (`LIST.claim_fields` in Lua).
LISTS: Mapping[str, tuple[str, ...]] = MappingProxyType({"claim_fields": CLAIM_FIELDS})


@dataclass(frozen=True)
class Layout:
    """A script's arguments: KEYS by name, ARGV by name, then optionally a variable tail.

    `tail` is a list of values (`"queues"`: a few, not thousands, as Lua's `unpack` takes them);
    `"job"`, one job record (JOB_RECORD followed by its
    dependency count and ids); or `"jobs"`, `count` such records.
    """

    keys: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    tail: str | None = None


#: Arguments of a claim (dequeue.lua, and after a finish in finish.lua). Every script reads the
#: time from Redis (TIME): a worker's clock decides nothing but how long it sleeps.
#: `limits`: the worker's limits as JSON ({job name: [concurrency, rate count, rate ms, per-key
#: concurrency, per-key rate count, per-key rate ms]}, 0 = none), '' without any.
CLAIM_ARGS = ("worker", "exec_id", "heartbeat_ttl", "worker_ttl", "promote", "limits")
#: What every outcome script gets about the attempt it records; `exec_id` fences the write.
ATTEMPT_ARGS = ("job_id", "queue", "exec_id", "worker")
#: A success, then (claim_next = '1') the next claim, in the same call.
FINISH_ARGS: tuple[str, ...] = (*ATTEMPT_ARGS, "return_value", "result_ttl", "has_dependencies")
FINISH_ARGS += ("claim_next", "next_exec_id", "heartbeat_ttl", "worker_ttl", "promote", "limits")

LAYOUTS: Mapping[str, Layout] = MappingProxyType(
    {
        # A JOB_RECORD's values that the script reads itself, then its hash pairs (`pack_fields`).
        "enqueue_one": Layout(
            args=("check_live", "register", "job_id", "queue", "run_at", "run_in", "ttl", "limit_key"),
            tail="fields",
        ),
        "enqueue": Layout(args=("count",), tail="jobs"),
        "dequeue": Layout(keys=("worker_key",), args=CLAIM_ARGS, tail="queues"),
        "finish": Layout(keys=("worker_key",), args=FINISH_ARGS, tail="queues"),
        "fail": Layout(
            keys=("worker_key",),
            args=(*ATTEMPT_ARGS, "ending", "retry_in", "error", "error_b64", "max_failed"),
        ),
        "heartbeat": Layout(
            keys=("worker_key",),
            args=("job_id", "queue", "exec_id", "heartbeat_ttl", "worker_ttl", "working_time"),
            tail="counts",
        ),
        "reap": Layout(args=("queue", "error", "error_b64", "limit", "max_failed")),
        # A schedule's due ticks, oldest first: `count` (tick, job record) pairs, if `last_seen` is
        # still its last tick (else another worker fired them: nothing is written). `through`: the
        # latest due tick, `missed` of the ones before it too old to fire.
        "tick": Layout(
            args=("name", "overlap", "last_seen", "first", "through", "missed", "count"), tail="ticks"
        ),
        "settle": Layout(args=("queue", "offset", "limit")),
        "cancel": Layout(args=("job_id",)),
        "requeue": Layout(args=("job_id", "data", "sig", "description", "expect_data")),
        "purge": Layout(args=("queue", "limit")),
        "handback": Layout(keys=("worker_key",), args=(*ATTEMPT_ARGS, "retry_in", "reason")),
        "lease": Layout(args=("owner", "ttl")),
        # A whole workflow in one step: `plan` (JSON: its workflows and each job's part in them,
        # `workflows.py`), then its `count` job records.
        "workflow": Layout(args=("plan", "count"), tail="jobs"),
        "wf_sweep": Layout(args=("limit",)),
    }
)


def packer(script: str) -> Callable[..., list[Any]]:
    """A function taking the script's arguments by name and returning [keys, args] for EVALSHA:
    keyword-only, generated once per script; a missing or unknown name raises TypeError at the
    call, never a value in the wrong place. The tail goes in as a list."""
    return _PACKERS[script]


def _generate(name: str, params: str, body: str) -> Callable[..., list[Any]]:
    scope: dict[str, Any] = {}
    source = f"def {name}(*, {params}):\n    return {body}\n"
    exec(compile(source, f"<taskq schema: {name}>", "exec"), scope)  # noqa: S102 - our own tables
    return scope[name]  # type: ignore[no-any-return]


def _script_packer(script: str, layout: Layout) -> Callable[..., list[Any]]:
    names = [*layout.keys, *layout.args, *([layout.tail] if layout.tail else [])]
    tail = f", *{layout.tail}" if layout.tail else ""
    keys = "".join(f"{key}, " for key in layout.keys)
    return _generate(f"pack_{script}", ", ".join(names), f"[[{keys}], [{', '.join(layout.args)}{tail}]]")


#: One JOB_RECORD by name, in script order, followed by its dependency count and ids.
pack_record = _generate(
    "pack_record",
    ", ".join(RECORD_NAMES) + ", depends_on=()",
    f"[{', '.join(RECORD_NAMES)}, len(depends_on), *depends_on]",
)


_FILLS = [(name, target) for name, targets in JOB_RECORD for target in targets]
#: The job hash pairs one JOB_RECORD fills, flat ('' values are not written): enqueue_one's tail.
pack_fields = _generate(
    "pack_fields",
    ", ".join(RECORD_NAMES) + ", depends_on=()",
    "[" + ", ".join(f"*(({t!r}, {n}) if {n} != '' and {n} != b'' else ())" for n, t in _FILLS) + "]",
)


def record_fields(record: list[Any]) -> dict[str, Any]:
    """The job hash fields one packed record fills (the in-memory store writes exactly these)."""
    pairs = zip(JOB_RECORD, record, strict=False)
    return {target: value for (_, targets), value in pairs if value not in ("", b"") for target in targets}


class SchemaError(Exception):
    """Raised at load when code and schema disagree (a script names something not defined here)."""


_PACKERS = {name: _script_packer(name, layout) for name, layout in LAYOUTS.items()}
