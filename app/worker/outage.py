"""How a worker rides out a Redis outage: one log line when it starts and one when it ends, and
waits that grow to 2 s, each cut short by the stop flag the caller names.

Every loop that calls `wait` leaves once that flag is set, so no loop spins on a set flag (a set
`threading.Event` makes `wait` return at once).
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("taskq.worker")

#: With `--burst`, a worker gives up (exit 1) after Redis has been unreachable this long.
BURST_PATIENCE = 20.0
#: How long a worker keeps trying to record one outcome before leaving the job to the reaper.
RECORD_PATIENCE = 120.0


class Outage:
    """Whether Redis is down for this worker, since when, and how long to wait before trying again."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def seconds(self) -> float:
        """How long the current outage has lasted (0 when Redis answers)."""
        return 0.0 if self.since is None else time.monotonic() - self.since

    def wait(self, exc: Exception, until: threading.Event) -> None:
        """Redis failed with `exc`: log it (once per outage), then wait, or less if `until` is set."""
        if self.since is None:
            self.since = time.monotonic()
            log.error("Redis unreachable, retrying: %s", exc)
        until.wait(min(2.0, 0.1 * 2 ** min(5, int(self.seconds))))

    def over(self) -> None:
        """Redis answered."""
        if self.since is not None:
            log.warning("Redis reachable again after %.1fs", self.seconds)
            self.since = None
