"""Hooks for the test and chaos suites, set by environment variables. Never set them in production.

- `TASKQ_TEST_CRASH_AFTER_CLAIM=0.05`: the worker dies (`os._exit`) right after 5 % of its claims,
  before running the job: the window rq leaves open (rq#2236), which our claim closes.
- `TASKQ_TEST_CLOCK_SKEW=3600`: the worker's own clock (`time.time`) runs an hour ahead (or
  behind, negative): due times, deadlines and reaping must not depend on it.
"""

from __future__ import annotations

import os
import random
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.worker.worker import Worker

CRASH_HOOK = "TASKQ_TEST_CRASH_AFTER_CLAIM"
CLOCK_SKEW = "TASKQ_TEST_CLOCK_SKEW"


def install(worker: Worker) -> None:
    """Install the hooks the environment asks for (none, normally)."""
    skew = float(os.environ.get(CLOCK_SKEW) or 0)
    if skew:
        real = time.time
        time.time = lambda: real() + skew
    chance = float(os.environ.get(CRASH_HOOK) or 0)
    if chance > 0:
        original = worker._next

        def crashing_next(burst: bool):  # type: ignore[no-untyped-def]
            claim = original(burst)
            if claim is not None and random.random() < chance:
                os._exit(3)
            return claim

        worker._next = crashing_next  # type: ignore[method-assign]
