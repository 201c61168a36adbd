"""Redis key names (rq's data model, plus our own `taskq:` keys) and the checks that guard them.

Every id and queue name is validated here before any key is built from it, so no caller can
reach another key (`Queue("a:intermediate")` is a key of queue `a` in plain rq).
"""

from __future__ import annotations

import re

from app.infrastructure.queue.errors import InvalidJobIdError, InvalidQueueNameError

# Used with `fullmatch` only: with `match`, a `$` anchor accepts a trailing newline ("abc\n").
JOB_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
QUEUE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: Key prefixes this project writes: rq's, and ours. Nothing is ever written outside them.
NAMESPACES = ("rq:", "taskq:")

QUEUES_SET = "rq:queues"
SUSPENDED = "rq:suspended"


def check_job_id(job_id: object) -> str:
    """Return `job_id` if it is `[A-Za-z0-9_-]{1,128}`.

    Raises:
        InvalidJobIdError: anything else.
    """
    if not isinstance(job_id, str) or not JOB_ID_RE.fullmatch(job_id):
        raise InvalidJobIdError(job_id)
    return job_id


def check_queue_name(name: object) -> str:
    """Return `name` if it is a valid queue name.

    Raises:
        InvalidQueueNameError: anything else.
    """
    if not isinstance(name, str) or not QUEUE_NAME_RE.fullmatch(name):
        raise InvalidQueueNameError(name)
    return name


def job(job_id: str) -> str:
    return f"rq:job:{job_id}"


def dependents(job_id: str) -> str:
    return f"rq:job:{job_id}:dependents"


def dependencies(job_id: str) -> str:
    return f"rq:job:{job_id}:dependencies"


def results(job_id: str) -> str:
    return f"rq:results:{job_id}"


def executions(job_id: str) -> str:
    return f"rq:executions:{job_id}"


def queue(name: str) -> str:
    return f"rq:queue:{name}"


def intermediate(name: str) -> str:
    return f"rq:queue:{name}:intermediate"


def started(name: str) -> str:
    return f"rq:wip:{name}"


def finished(name: str) -> str:
    return f"rq:finished:{name}"


def failed(name: str) -> str:
    return f"rq:failed:{name}"


def deferred(name: str) -> str:
    return f"rq:deferred:{name}"


def scheduled(name: str) -> str:
    return f"rq:scheduled:{name}"


def canceled(name: str) -> str:
    return f"rq:canceled:{name}"


def wake(name: str) -> str:
    """A list of wake-up tokens, one pushed per job pushed to queue `name`; idle workers block on it."""
    return f"taskq:wake:{name}"
