"""Running one claimed job: check it, load it, bind its params, call it, say how it went.

`JobRunner.run` is the same code in every mode (in a work horse, in the worker itself, and under
`InMemoryQueue`); `settle` turns its `Outcome` into what is recorded (a retry after its backoff,
or a final failure), the same way everywhere. Nothing of a job is loaded before its signature
is checked, nothing is imported or run unless its name is registered, and params that the
function cannot take fail the job at once, naming the parameter. A job whose name (or params
version) this worker does not know is handed back, unfailed, for a worker that knows it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import pickle
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty

from app import tracing
from app.config import Settings
from app.infrastructure.queue.directory import Knows, nobody
from app.infrastructure.queue.errors import (
    CorruptJobError,
    InvalidParamsError,
    JobNotAllowedError,
    PayloadError,
    QueueError,
    SignatureError,
)
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.record import JobRecord
from app.infrastructure.queue.schema import Ending
from app.infrastructure.queue.serialization import TASKQ_ONLY, Serializer
from app.infrastructure.queue.store import Claim, ProgressSink
from app.infrastructure.queue.workflow_input import with_input
from app.worker.runtime import JobContext, PermanentError, RateLimited, running

UNSERIALIZABLE = "Unserializable return value"
#: Seconds a handed-back job waits before it can be claimed again: a lone old worker does not spin
#: on it, and a worker that knows it (say, just deployed) gets it within this long.
HANDBACK_DELAY = 5.0
#: How `run_async` calls a plain `def` job: on a thread of the worker's pool, awaited.
Offload = Callable[[Callable[[], Any]], Awaitable[Any]]


class JobStopped(BaseException):
    """Raised inside an inline job when `stop()` asks for it; a BaseException so jobs don't swallow it."""


class ColdShutdown(BaseException):
    """Raised inside an inline job on a second SIGTERM: the job is put back and the worker exits."""


@dataclass(frozen=True)
class Outcome:
    """How a run ended: FINISHED, FAILED (`retryable` or not), STOPPED, REQUEUE or HANDBACK
    (`settle` decides RETRY, and when a hand-back is due)."""

    ending: Ending
    return_blob: str = ""
    error: str = ""
    retryable: bool = False
    job_name: str = ""
    delay: float | None = None  # SNOOZE: run again this many seconds later

    @classmethod
    def failure(cls, error: str, retryable: bool, job_name: str = "") -> Outcome:
        return cls(Ending.FAILED, error=error, retryable=retryable, job_name=job_name)


class _NotKnownHereError(Exception):
    """The job's name, or its params version, is not one this worker runs."""

    def __init__(self, job_name: str, version: int, name_known: bool) -> None:
        self.job_name, self.version = job_name, version
        # Any writer may have named it: shown on one line, bounded.
        shown = job_name if job_name.isprintable() and len(job_name) <= 200 else repr(job_name[:200])
        self.label = f"{shown} (params version {version})" if name_known else shown
        super().__init__(self.label)


@dataclass(frozen=True)
class Settled:
    """What is recorded for an outcome: its ending, the wait before it runs again (a retry, a
    snooze, a hand-back; None: now), the error text."""

    ending: Ending
    retry_in: float | None
    error: str


def settle(record: JobRecord, outcome: Outcome) -> Settled:
    """The record of `outcome`: a retryable failure is retried after its backoff while it has
    retries left. A job whose stored retry list is corrupt fails, saying so (never the worker)."""
    if outcome.ending is Ending.SNOOZE:
        return Settled(Ending.SNOOZE, outcome.delay, outcome.error)
    if outcome.ending is Ending.HANDBACK:
        return Settled(Ending.HANDBACK, HANDBACK_DELAY, outcome.error)
    if outcome.ending is not Ending.FAILED or not outcome.retryable or record.retries_left <= 0:
        return Settled(outcome.ending, None, outcome.error)
    try:
        intervals = record.retry_intervals
    except CorruptJobError as exc:
        return Settled(Ending.FAILED, None, f"{outcome.error}\nCorruptJobError: {exc}; not retried")
    index = max(len(intervals) - record.retries_left, 0)
    wait = intervals[index] if index < len(intervals) else 0
    return Settled(Ending.RETRY, wait if wait > 0 else None, outcome.error)


@dataclass(frozen=True)
class _Signature:
    """What a job function accepts, computed once: checking a job's params against it is cheap."""

    names: frozenset[str]
    required: frozenset[str]
    any_keyword: bool

    @classmethod
    def of(cls, func: Callable[..., Any]) -> _Signature:
        params = inspect.signature(func).parameters.values()
        keywords = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return cls(
            frozenset(p.name for p in keywords),
            frozenset(p.name for p in keywords if p.default is p.empty),
            any(p.kind is p.VAR_KEYWORD for p in params),
        )

    def problem(self, params: Mapping[str, Any]) -> tuple[str, str] | None:
        """(parameter, what is wrong with it), or None when the params fit."""
        unknown = () if self.any_keyword else sorted(set(params) - self.names)
        if unknown:
            return unknown[0], f"the function takes no parameter {unknown[0]!r}"
        missing = sorted(self.required - set(params))
        if missing:
            return missing[0], f"the required parameter {missing[0]!r} is missing"
        return None


class JobRunner:
    """Checks a claimed job against the allow-list, loads it and calls it."""

    def __init__(
        self,
        settings: Settings,
        registry: JobRegistry,
        serializer: Serializer,
        functions: Mapping[str, Callable[..., Any]],
        progress: Callable[[Claim], ProgressSink],
        *,
        timeouts: bool = True,
        knows: Knows = nobody,
    ) -> None:
        """`timeouts=False` runs jobs without SIGALRM (off the main thread: `InMemoryQueue`);
        `knows` says whether a live worker elsewhere knows a job this one does not."""
        self.settings = settings
        self.knows = knows
        self.timeouts = timeouts
        self.registry = registry
        self.serializer = serializer
        self.functions = functions
        self.progress = progress
        self._signatures = {name: _Signature.of(func) for name, func in functions.items()}
        # A group's results are bounded by QUEUE_MAX_RESULT_BYTES, JSON-escaped (a third more, at most).
        self._input_limit = 2 * max(settings.max_result_bytes, settings.max_payload_bytes) + 65536

    def run(self, claim: Claim) -> Outcome:
        prepared = self._prepare(claim)
        if isinstance(prepared, Outcome):
            return prepared
        job_name, func, args, kwargs, context = prepared
        try:
            with (
                running(context),
                self._deadline(claim),
                tracing.job_span(claim.record.trace, _span_attributes(claim, job_name)),
            ):
                value = func(*args, **kwargs)
                if asyncio.iscoroutine(value):
                    value = asyncio.run(value)
        except (JobStopped, PermanentError, RateLimited, Exception, SystemExit, KeyboardInterrupt) as exc:
            return _ended(exc, job_name)
        return self._finished(value, job_name)

    async def run_async(self, claim: Claim, offload: Offload) -> Outcome:
        """`run` on the running event loop (`--concurrency N`): an `async def` job is awaited under
        its timeout (`asyncio.timeout`); a plain `def` job is called through `offload` (the
        worker's thread pool), whose watchdog enforces its timeout. Cancelling the task (a stop,
        a cold shutdown) raises `CancelledError` out of here: the caller knows which it was."""
        prepared = self._prepare(claim)
        if isinstance(prepared, Outcome):
            return prepared
        job_name, func, args, kwargs, context = prepared
        seconds = self.timeout(claim)
        deadline = asyncio.timeout(seconds)
        try:
            with running(context), tracing.job_span(claim.record.trace, _span_attributes(claim, job_name)):
                if inspect.iscoroutinefunction(func):
                    async with deadline:
                        value = await func(*args, **kwargs)
                else:
                    value = await offload(lambda: func(*args, **kwargs))
                    if inspect.isawaitable(value):
                        async with deadline:
                            value = await value
        except TimeoutError as exc:
            if not deadline.expired():
                return _ended(exc, job_name)  # the job's own TimeoutError (a client's, say)
            error = f"JobTimeoutException: Task exceeded maximum timeout value ({seconds} seconds)"
            return Outcome.failure(error, retryable=True, job_name=job_name)
        except (JobStopped, PermanentError, RateLimited, Exception, SystemExit, KeyboardInterrupt) as exc:
            return _ended(exc, job_name)
        return self._finished(value, job_name)

    def _prepare(
        self, claim: Claim
    ) -> Outcome | tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any], JobContext]:
        """The job loaded and checked, with its context; or the outcome of a job that cannot run."""
        try:
            job_name, func, args, kwargs = self._load(claim)
        except _NotKnownHereError as unknown:
            return self._not_known(claim, unknown)
        except (PayloadError, JobNotAllowedError, InvalidParamsError) as exc:
            return Outcome.failure(_refusal(exc), retryable=False)
        context = JobContext(
            claim.job_id, job_name, claim.queue, claim.attempt, self.settings, self.progress(claim)
        )
        return job_name, func, args, kwargs, context

    def _finished(self, value: Any, job_name: str) -> Outcome:
        # A result past the bound would crowd jobs out of Redis (and past proto-max-bulk-len break
        # the write): the job fails, saying so, and is not retried (it would be as large again).
        blob = self._encode(value)
        limit = self.settings.max_result_bytes
        if len(blob) <= limit:
            return Outcome(Ending.FINISHED, return_blob=blob, job_name=job_name)
        error = (
            f"ResultTooLargeError: the result of {job_name!r} is {len(blob)} bytes (base64), over the "
            f"limit of {limit} (QUEUE_MAX_RESULT_BYTES); return a reference (a path, an id) instead"
        )
        return Outcome.failure(error, retryable=False, job_name=job_name)

    def rehearse(self) -> None:
        """Walk the path of a run without calling a job, in a spare work horse while it waits.

        A forked child copies every memory page it writes to (reference counts write to every
        object it touches); doing that before the job arrives takes those copies off the path from
        claim to start (~1.5 ms in a VM).
        """
        job_name = next(iter(self.functions), None)
        if job_name is None:
            return
        data = self.serializer.dumps((job_name, None, (), {}))
        record = JobRecord("rehearsal", {b"data": data, b"timeout": b"1", b"status": b"started"})
        claim = pickle.loads(pickle.dumps(Claim("rehearsal", "rehearsal", "x", 1, record, time.time())))
        with contextlib.suppress(Exception):
            self._load(claim)
            context = JobContext(claim.job_id, job_name, claim.queue, 1, self.settings, self.progress(claim))
            with running(context), UnixSignalDeathPenalty(1, JobTimeoutException, job_id=claim.job_id):
                pass
            pickle.dumps(Outcome(Ending.FINISHED, return_blob=self._encode(None), job_name=job_name))

    def _not_known(self, claim: Claim, unknown: _NotKnownHereError) -> Outcome:
        """Handed back, until the grace since it was first handed back is over and no live
        worker knows it: then it fails, to be requeued (`taskq failed requeue`) after the fix."""
        since = claim.record.unknown_since
        waited = claim.started - since if since is not None else 0.0
        if waited >= self.settings.unknown_job_grace and not self._known_elsewhere(unknown, claim.queue):
            error = f"job not found: no live worker knows {unknown.label}"
            return Outcome.failure(error, retryable=False, job_name=unknown.job_name)
        reason = f"handed back: this worker does not know {unknown.label}; waiting for a worker that does"
        return Outcome(Ending.HANDBACK, error=reason, job_name=unknown.job_name)

    def _known_elsewhere(self, unknown: _NotKnownHereError, queue: str) -> bool:
        try:
            return self.knows(unknown.job_name, unknown.version, queue)
        except QueueError:
            return True  # cannot tell now: hand it back rather than fail it

    def _deadline(self, claim: Claim) -> contextlib.AbstractContextManager[Any]:
        if not self.timeouts:
            return contextlib.nullcontext()
        return UnixSignalDeathPenalty(self.timeout(claim), JobTimeoutException, job_id=claim.job_id)

    def timeout(self, claim: Claim) -> int:
        """Seconds the claimed job may run: its own timeout, else the worker's default."""
        return claim.record.timeout or self.settings.job_timeout

    def _load(self, claim: Claim) -> tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        for callback in claim.record.callbacks:
            if not self.registry.is_callback(callback):
                raise JobNotAllowedError(callback, "callback")
        job_name, instance, args, kwargs = claim.record.load_call(
            self.serializer, self.settings.max_payload_bytes
        )
        if instance not in (None, TASKQ_ONLY):
            raise JobNotAllowedError(job_name)
        # A workflow's job: the previous result, a group's results, where its signed params say.
        kwargs = with_input(claim.job_id, kwargs, claim.record.input, self.serializer, self._input_limit)
        if not self.registry.is_registered(job_name) or job_name not in self.functions:
            raise _NotKnownHereError(job_name, claim.record.params_version, name_known=False)
        if claim.record.params_version != self.registry.version(job_name):
            raise _NotKnownHereError(job_name, claim.record.params_version, name_known=True)
        func = self.functions[job_name]
        problem = (
            self._signatures[job_name].problem(kwargs) if not args else _bind_problem(func, args, kwargs)
        )
        if problem is not None:
            raise InvalidParamsError(job_name, f"do not fit the function: {problem[1]}", problem[0])
        return job_name, func, args, kwargs

    def _encode(self, value: Any) -> str:
        if value is None:
            return ""
        try:
            blob = self.serializer.dumps(value)
        except Exception:
            blob = self.serializer.dumps(UNSERIALIZABLE)
        return base64.b64encode(blob).decode()


def _ended(exc: BaseException, job_name: str) -> Outcome:
    """The outcome of a job that raised `exc` (called inside its `except`, for the traceback)."""
    if isinstance(exc, JobStopped):
        return Outcome(Ending.STOPPED, error="Job stopped by request", job_name=job_name)
    if isinstance(exc, PermanentError):
        return Outcome.failure(traceback.format_exc(), retryable=False, job_name=job_name)
    if isinstance(exc, RateLimited):
        return Outcome(Ending.SNOOZE, error=f"RateLimited: {exc}", job_name=job_name, delay=exc.retry_after)
    # Anything else (a job's sys.exit() too) ends the job, not the worker; it may be retried.
    return Outcome.failure(traceback.format_exc(), retryable=True, job_name=job_name)


def _refusal(exc: Exception) -> str:
    """A refused job's error: one line, after the traceback of its cause when it has one, so
    that `taskq failed show` shows where loading failed (the last line stays the summary)."""
    line = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    if cause is None or isinstance(exc, SignatureError):
        return line
    chain = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
    return f"{chain}\nThe above exception was the direct cause of:\n\n{line}"


def _span_attributes(claim: Claim, job_name: str) -> dict[str, object]:
    return {
        "taskq.job.id": claim.job_id,
        "taskq.job.name": job_name,
        "taskq.queue": claim.queue,
        "taskq.attempt": claim.attempt,
    }


def _bind_problem(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, str] | None:
    """For jobs written with positional arguments (by plain rq): Python's own binding check."""
    try:
        inspect.signature(func).bind(*args, **kwargs)
    except TypeError as exc:
        return "", str(exc)
    return None
