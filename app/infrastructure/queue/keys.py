"""Redis key names (`schema.KEYS`: rq's data model, plus our own `taskq:` keys), and the checks
that guard them.

Every id and queue name is validated here before any key is built from it, so no caller can
reach another key (`Queue("a:intermediate")` is a key of queue `a` in plain rq).
"""

from __future__ import annotations

import re

from app.infrastructure.queue.errors import InvalidJobIdError, InvalidQueueNameError
from app.infrastructure.queue.schema import KEYS

# Used with `fullmatch` only: with `match`, a `$` anchor accepts a trailing newline ("abc\n").
JOB_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: The ids the scheduler gives a schedule's jobs (`schedule:<name>:<tick>`): read like any id,
#: never accepted from a producer (a tick's id is the schedule's to take).
SCHEDULED_ID_RE = re.compile(r"schedule:[a-z0-9][a-z0-9_-]{0,63}:\d{1,12}")
QUEUE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

#: Key prefixes this project writes: rq's, and ours. Nothing is ever written outside them.
NAMESPACES = ("rq:", "taskq:")

QUEUES_SET = KEYS["queues"]
WORKERS_SET = KEYS["workers"]
SUSPENDED = KEYS["suspended"]
PAUSED = KEYS["paused"]


def check_job_id(job_id: object, *, scheduled: bool = True) -> str:
    """Return `job_id` if it is `[A-Za-z0-9_-]{1,128}` (or, unless `scheduled` is false, a
    scheduled job's `schedule:<name>:<tick>`).

    Raises:
        InvalidJobIdError: anything else.
    """
    if isinstance(job_id, str) and (
        JOB_ID_RE.fullmatch(job_id) or (scheduled and SCHEDULED_ID_RE.fullmatch(job_id))
    ):
        return job_id
    raise InvalidJobIdError(job_id)


def check_queue_name(name: object) -> str:
    """Return `name` if it is a valid queue name.

    Raises:
        InvalidQueueNameError: anything else.
    """
    if not isinstance(name, str) or not QUEUE_NAME_RE.fullmatch(name):
        raise InvalidQueueNameError(name)
    return name


def key(kind: str, name: str) -> str:
    """The key of `kind` (a `schema.KEYS` name) for a job id or queue name: `key("job", id)`."""
    return KEYS[kind].format(name)


def job(job_id: str) -> str:
    return f"rq:job:{job_id}"  # the hottest key: spelled out; tests/unit check it is KEYS["job"]


def results(job_id: str) -> str:
    return key("results", job_id)


def queue(name: str) -> str:
    return key("queue", name)


def started(name: str) -> str:
    return key("started", name)


def wake(name: str) -> str:
    """A list of wake-up tokens, one pushed per job pushed to queue `name`; idle workers block on it."""
    return key("wake", name)
