"""Running one claimed job: check it, load it, call it, and say how it went (an `Outcome`).

`JobRunner.run` is the same code in both modes; `run_forked` wraps it in a child process
(isolation per job, a hard kill at the timeout), `run_inline` calls it in the worker itself.
Nothing of a job is loaded before its signature is checked, and nothing is imported or run
unless its path is registered.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import pickle
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty

from app import tracing
from app.config import Settings
from app.infrastructure.queue.errors import JobNotAllowedError, PayloadError
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.record import JobRecord
from app.infrastructure.queue.serialization import Serializer
from app.worker.runtime import JobContext, PermanentError, ProgressSink, running

Kind = Literal["finished", "failed", "stopped", "requeue"]
UNSERIALIZABLE = "Unserializable return value"


class JobStopped(BaseException):
    """Raised inside an inline job when `stop()` asks for it; a BaseException so jobs don't swallow it."""


class ColdShutdown(BaseException):
    """Raised inside an inline job on a second SIGTERM: the job is put back and the worker exits."""


@dataclass(frozen=True)
class Claim:
    """A job the dequeue script handed to this worker, registered as started under `execution_id`."""

    queue: str
    job_id: str
    execution_id: str
    attempt: int
    record: JobRecord
    started: float


@dataclass(frozen=True)
class Outcome:
    """How a run ended. `retryable` failures are retried while the job has retries left."""

    kind: Kind
    return_blob: str = ""
    error: str = ""
    retryable: bool = False
    func_name: str = ""

    @classmethod
    def failure(cls, error: str, retryable: bool, func_name: str = "") -> Outcome:
        return cls("failed", error=error, retryable=retryable, func_name=func_name)


class JobRunner:
    """Checks a claimed job against the allow-list, loads it and calls it."""

    def __init__(
        self,
        settings: Settings,
        registry: JobRegistry,
        serializer: Serializer,
        functions: Mapping[str, Callable[..., Any]],
        progress: Callable[[Claim], ProgressSink],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.serializer = serializer
        self.functions = functions
        self.progress = progress

    def run(self, claim: Claim) -> Outcome:
        try:
            func_name, func, args, kwargs = self._load(claim)
        except (PayloadError, JobNotAllowedError) as exc:
            return Outcome.failure(f"{type(exc).__name__}: {exc}", retryable=False)
        context = JobContext(
            claim.job_id, func_name, claim.queue, claim.attempt, self.settings, self.progress(claim)
        )
        try:
            with (
                running(context),
                UnixSignalDeathPenalty(_timeout(claim), JobTimeoutException, job_id=claim.job_id),
                tracing.job_span(claim.record.trace, _span_attributes(claim, func_name)),
            ):
                value = func(*args, **kwargs)
                if asyncio.iscoroutine(value):
                    value = asyncio.run(value)
        except JobStopped:
            return Outcome("stopped", error="Job stopped by request", func_name=func_name)
        except PermanentError:
            return Outcome.failure(traceback.format_exc(), retryable=False, func_name=func_name)
        except Exception:
            return Outcome.failure(traceback.format_exc(), retryable=True, func_name=func_name)
        return Outcome("finished", return_blob=self._encode(value), func_name=func_name)

    def rehearse(self) -> None:
        """Walk the path of a run without calling a job, in a spare work horse while it waits.

        A forked child copies every memory page it writes to (reference counts write to every
        object it touches); doing that before the job arrives takes those copies off the path from
        claim to start (~1.5 ms in a VM).
        """
        path = next(iter(self.functions), None)
        if path is None:
            return
        data = self.serializer.dumps((path, None, (), {}))
        record = JobRecord.from_hash("rehearsal", {b"data": data, b"timeout": b"1", b"status": b"started"})
        claim = pickle.loads(pickle.dumps(Claim("rehearsal", "rehearsal", "x", 1, record, time.time())))
        with contextlib.suppress(Exception):
            self._load(claim)
            context = JobContext(claim.job_id, path, claim.queue, 1, self.settings, self.progress(claim))
            with running(context), UnixSignalDeathPenalty(1, JobTimeoutException, job_id=claim.job_id):
                pass
            pickle.dumps(Outcome("finished", return_blob=self._encode(None), func_name=path))

    def _load(self, claim: Claim) -> tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        for callback in claim.record.callbacks:
            if not self.registry.is_callback(callback):
                raise JobNotAllowedError(callback, "callback")
        func_name, instance, args, kwargs = claim.record.load_call(
            self.serializer, self.settings.max_payload_bytes
        )
        if (
            instance is not None
            or not self.registry.is_registered(func_name)
            or func_name not in self.functions
        ):
            raise JobNotAllowedError(func_name)
        return func_name, self.functions[func_name], args, kwargs

    def _encode(self, value: Any) -> str:
        if value is None:
            return ""
        try:
            blob = self.serializer.dumps(value)
        except Exception:
            blob = self.serializer.dumps(UNSERIALIZABLE)
        return base64.b64encode(blob).decode()


def _span_attributes(claim: Claim, func_name: str) -> dict[str, object]:
    return {
        "taskq.job.id": claim.job_id,
        "taskq.job.name": func_name,
        "taskq.queue": claim.queue,
        "taskq.attempt": claim.attempt,
    }


def _timeout(claim: Claim) -> int:
    return claim.record.timeout or 180


def run_inline(runner: JobRunner, claim: Claim) -> Outcome:
    """Run the job in this process (fast mode): no fork, a timeout by SIGALRM."""
    return runner.run(claim)
