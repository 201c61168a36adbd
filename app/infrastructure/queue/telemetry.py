"""What the producer reports about an enqueue: one structured `enqueued` log line per new job.

`RQQueue` calls it only when INFO is enabled for `taskq.queue`, so a quiet producer pays nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from app.infrastructure.queue.job_spec import JobSpec
from app.infrastructure.queue.record import text

log = logging.getLogger("taskq.queue")


def log_enqueued(specs: Sequence[JobSpec], reply: Sequence[Any]) -> None:
    """Log each job the enqueue script created (`reply` is its `{'ok', created, status, ...}`).

    A job found alive under its idempotency key was not enqueued again: it is logged at DEBUG.
    """
    for index, spec in enumerate(specs):
        created, status = reply[1 + 2 * index], text(reply[2 + 2 * index])
        fields = {
            "event": "enqueued" if created == 1 else "exists",
            "job_id": spec.job_id,
            "job_name": spec.job_name,
            "queue": spec.queue,
            "status": status,
        }
        if created == 1:
            log.info("job enqueued", extra=fields)
        else:
            log.debug("job exists", extra=fields)
