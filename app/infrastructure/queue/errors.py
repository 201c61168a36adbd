"""The error hierarchy of the task queue: one base class, one subclass per thing that went wrong.

Every error names the value that was wrong. Errors from redis-py and rq never leave the
adapter raw: they are translated into these, with the original chained (`raise ... from exc`).
"""

from __future__ import annotations

from collections.abc import Sequence


class QueueError(Exception):
    """Base class of every error the task queue raises (`ConfigError` lives in `app.config`).

    `retryable` says whether the same call may succeed later without changing anything: true only
    for Redis being unreachable, slow or full. A caller answering HTTP can map retryable errors to
    503 and the rest to 4xx/5xx without retrying.
    """

    retryable = False


# --- enqueueing -----------------------------------------------------------------------------


class EnqueueError(QueueError):
    """Base class of the errors that reject an enqueue before anything is written."""


class UnknownJobError(EnqueueError):
    """Raised when a job name is not in the registry of jobs (`job_paths.py`)."""

    def __init__(self, job_name: object, suggestions: Sequence[str] = ()) -> None:
        self.job_name = job_name
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown job {job_name!r}: it is not registered in job_paths.py{hint}")


class InvalidParamsError(EnqueueError):
    """Raised when `params` is not a mapping of str keys, or does not fit the job's declared params.

    `key` names the parameter (the field) that was wrong, when there is one.
    """

    def __init__(self, job_name: str, reason: str, key: object = None) -> None:
        self.job_name = job_name
        self.key = key
        super().__init__(f"params of {job_name!r}: {reason}")


class SerializationError(EnqueueError):
    """Raised when the params (or meta) of a job cannot be serialized."""

    def __init__(self, job_name: str, reason: str, key: str | None = None) -> None:
        self.job_name = job_name
        self.key = key
        where = f" (key {key!r})" if key is not None else ""
        super().__init__(f"params of {job_name!r} cannot be serialized{where}: {reason}")


class PayloadTooLargeError(EnqueueError):
    """Raised when a job's serialized payload is over the size bound (`QUEUE_MAX_PAYLOAD_BYTES`)."""

    def __init__(self, job_name: str, size: int, limit: int) -> None:
        self.job_name = job_name
        self.size = size
        self.limit = limit
        super().__init__(
            f"payload of {job_name!r} is {size} bytes, over the limit of {limit} bytes "
            "(QUEUE_MAX_PAYLOAD_BYTES); pass a reference (an id, a path) instead of the data"
        )


class InvalidOptionError(EnqueueError):
    """Raised when an enqueue option (priority, delay, retry, timeout, ...) has a bad value."""

    def __init__(self, option: str, value: object, reason: str) -> None:
        self.option = option
        self.value = value
        super().__init__(f"{option}={value!r}: {reason}")


class InvalidJobIdError(InvalidOptionError):
    """Raised when a job id (idempotency key) is not `[A-Za-z0-9_-]{1,128}`."""

    def __init__(self, job_id: object) -> None:
        self.job_id = job_id
        super().__init__("job_id", job_id, "job ids must match [A-Za-z0-9_-]{1,128}")


class InvalidQueueNameError(InvalidOptionError):
    """Raised when a queue name is not `[a-z0-9][a-z0-9_-]{0,63}` (it would reach into other keys)."""

    def __init__(self, name: object) -> None:
        self.name = name
        super().__init__("queue", name, "queue names must match [a-z0-9][a-z0-9_-]{0,63}")


class DependencyError(EnqueueError):
    """Raised when a job named in `depends_on` does not exist or can never succeed (failed or the like)."""

    def __init__(self, job_id: str, dependency_id: str, status: str | None) -> None:
        self.job_id = job_id
        self.dependency_id = dependency_id
        self.status = status
        state = f"is {status}" if status else "does not exist"
        super().__init__(f"job {job_id!r} depends on {dependency_id!r}, which {state}; it could never run")


class WorkflowError(EnqueueError):
    """Raised when a chain or group cannot be written as given (nothing of it is written): no jobs,
    too many, an id used twice or by a live job, an option its jobs cannot have. `job_id` names
    the job (or workflow) at fault, when there is one."""

    def __init__(self, reason: str, job_id: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(f"workflow refused: {reason}; nothing was written")


class WorkflowNotFoundError(QueueError):
    """Raised when no chain or group has this id (it never existed, or its record expired)."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} not found (it never existed, or its record expired)")


class BatchError(QueueError):
    """Raised when Redis failed after part of a large `enqueue_many` was written.

    `written` lists the ids of the jobs written (created, or found alive under their id). With
    job ids of your own, calling `enqueue_many` again with the same requests adds nothing twice.
    """

    def __init__(self, written: list[str], total: int, cause: QueueError) -> None:
        self.written = written
        self.total = total
        self.retryable = cause.retryable
        super().__init__(f"{len(written)} of {total} jobs written before: {cause}")


class NoWorkerError(EnqueueError):
    """Raised with `require_worker=True` when no live worker knows the job (its name and params version)."""

    def __init__(self, job_name: str, version: int, queue: str) -> None:
        self.job_name = job_name
        self.version = version
        self.queue = queue
        super().__init__(
            f"no live worker knows job {job_name!r} (params version {version}) on queue {queue!r}; "
            "nothing was written"
        )


# --- talking to Redis -----------------------------------------------------------------------


class QueueBackendError(QueueError):
    """Base class of the errors Redis gave us, after the bounded retries (see `retryable`)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url  # always redacted by the caller
        super().__init__(f"Redis at {url} {self.verb}: {reason}")

    verb = "failed"


class QueueUnavailableError(QueueBackendError):
    """Raised when Redis cannot be reached (refused, reset, down) after the bounded retries: retry later."""

    retryable = True
    verb = "is unavailable"


class QueueTimeoutError(QueueUnavailableError):
    """Raised when Redis accepted the connection but did not answer in time: retry later."""


class QueueReplicationError(QueueUnavailableError):
    """Raised when fewer than `QUEUE_WAIT_REPLICAS` replicas acknowledged an enqueue in time.

    The job is on the primary but may be lost if it fails over now. Enqueueing again with the
    same ids (`job_ids`) is safe: a job that is there is returned, not created twice.
    """

    verb = "did not replicate the enqueue"

    def __init__(self, url: str, reason: str, job_ids: tuple[str, ...] = ()) -> None:
        self.job_ids = job_ids
        super().__init__(url, reason + (f" (job ids: {', '.join(job_ids[:10])})" if job_ids else ""))


class QueueFullError(QueueBackendError):
    """Raised when Redis is out of memory (`maxmemory`, `noeviction`): nothing was written; retry later."""

    retryable = True
    verb = "is full"


class QueuePermissionError(QueueBackendError):
    """Raised when the password is wrong or missing, or the ACL user lacks a permission: not an outage."""

    verb = "refused access"


class QueueCommandError(QueueBackendError):
    """Raised when Redis refused a command for another reason (a key of the wrong type, a script error)."""

    verb = "refused a command"


# --- reading and steering jobs --------------------------------------------------------------


class JobNotFoundError(QueueError):
    """Raised when no job has this id (it never existed, or it expired)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} not found (it never existed, or its result expired)")


class JobStateError(QueueError):
    """Raised when a job is not in a state that allows the operation (cancel a finished job, ...)."""

    def __init__(self, job_id: str, status: str, operation: str) -> None:
        self.job_id = job_id
        self.status = status
        self.operation = operation
        super().__init__(f"cannot {operation} job {job_id!r}: it is {status}")


class WaitTimeoutError(QueueError):
    """Raised when `wait()` gave up before the job finished or failed."""

    def __init__(self, job_id: str, timeout: float, status: str) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.status = status
        super().__init__(f"job {job_id!r} still {status} after waiting {timeout:g} s")


# --- resolving job code (the worker side) ---------------------------------------------------


class JobImportError(QueueError):
    """Base class of the failures to turn a job's name (its dotted import path) into a callable."""

    def __init__(self, job_name: str, reason: str) -> None:
        self.job_name = job_name
        super().__init__(f"job path {job_name!r}: {reason}")


class InvalidJobPathError(JobImportError):
    """Raised when a job path is not a dotted `package.module.function` name."""


class JobModuleNotFoundError(JobImportError):
    """Raised when the module of a job path does not exist."""


class JobModuleImportError(JobImportError):
    """Raised when the module of a job path exists but raises while importing (the cause is chained)."""


class JobAttributeError(JobImportError):
    """Raised when the module imports but has no attribute of that name."""


class JobNotCallableError(JobImportError):
    """Raised when the attribute exists but cannot be called."""


class JobNotAllowedError(QueueError):
    """Raised in the worker when a job or callback names an unregistered path: nothing is imported."""

    def __init__(self, job_name: object, what: str = "job") -> None:
        self.job_name = job_name
        self.what = what
        super().__init__(f"refused to run {what} {job_name!r}: it is not a registered job path")


class WorkerNameError(QueueError):
    """Raised when a worker starts under the name of a live worker (names must be unique)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a live worker is already named {name!r}; give this one another --name")


class PayloadError(QueueError):
    """Raised in the worker when a job's stored data cannot be trusted or loaded (nothing of it ran)."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r}: {reason}")


class CorruptJobError(PayloadError):
    """Raised when a field of a stored job cannot be read (written by hand, or by something else):
    the job fails with this reason; the worker goes on."""


class SignatureError(PayloadError):
    """Raised when signed data has no valid HMAC tag for any configured key: it is never unpickled."""
