"""The task queue: enqueue from the application, and the Redis adapter behind it.

The package's face is small: `from app.infrastructure.queue import RQQueue, JobRequest, Chain, QueueError`
(and `AsyncRQQueue`, the same port as coroutines, for asyncio services).
Names are imported when first used, so importing one module of the package (the worker imports
`errors`) does not load the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names of __all__, for type checkers (tests/unit/test_faces.py)
    from app.infrastructure.queue.async_queue import AsyncRQQueue
    from app.infrastructure.queue.errors import (
        EnqueueError,
        InvalidOptionError,
        InvalidParamsError,
        JobNotFoundError,
        JobStateError,
        NoWorkerError,
        QueueBackendError,
        QueueError,
        QueueFullError,
        QueuePermissionError,
        QueueReplicationError,
        QueueUnavailableError,
        UnknownJobError,
        WaitTimeoutError,
        WorkflowError,
        WorkflowNotFoundError,
    )
    from app.infrastructure.queue.job_params import JobParams
    from app.infrastructure.queue.job_paths import INGEST_DOC_JOB, JobRegistry
    from app.infrastructure.queue.memory_queue import InMemoryQueue
    from app.infrastructure.queue.port import (
        EnqueueOptions,
        JobQueue,
        JobRequest,
        JobStatus,
        JobView,
        Priority,
        Progress,
        RetryPolicy,
    )
    from app.infrastructure.queue.rq_queue import RQQueue
    from app.infrastructure.queue.workflow_view import WorkflowView
    from app.infrastructure.queue.workflows import Chain, Edge

__all__ = [
    "INGEST_DOC_JOB",
    "AsyncRQQueue",
    "Chain",
    "Edge",
    "EnqueueError",
    "EnqueueOptions",
    "InMemoryQueue",
    "InvalidOptionError",
    "InvalidParamsError",
    "JobNotFoundError",
    "JobParams",
    "JobQueue",
    "JobRegistry",
    "JobRequest",
    "JobStateError",
    "JobStatus",
    "JobView",
    "NoWorkerError",
    "Priority",
    "Progress",
    "QueueBackendError",
    "QueueError",
    "QueueFullError",
    "QueuePermissionError",
    "QueueReplicationError",
    "QueueUnavailableError",
    "RQQueue",
    "RetryPolicy",
    "UnknownJobError",
    "WaitTimeoutError",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowView",
]
#: Where the names of the face live, lightest module first.
_MODULES = (
    "errors",
    "port",
    "job_params",
    "job_paths",
    "workflows",
    "workflow_view",
    "rq_queue",
    "memory_queue",
    "async_queue",
)


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            found = getattr(importlib.import_module(f"{__name__}.{module}"), name, None)
            if found is not None:
                globals()[name] = found
                return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
