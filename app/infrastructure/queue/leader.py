"""`Lease`: which one of the workers serving metrics exports the cluster-wide gauges.

Every worker sees every queue, so if each exported the queue depth, `sum()` in Prometheus would
count each queue once per worker. One lease in Redis (`taskq:metrics-leader`, renewed well within
its TTL) picks one exporter; it is checked at each scrape (fenced), so a worker that lost it stops
exporting at once, and another takes over within `LEASE_SECONDS` when the leader dies.
"""

from __future__ import annotations

import redis

from app.infrastructure.queue import lua
from app.infrastructure.queue.schema import packer
from app.infrastructure.redis.connection import describe, translating

#: Seconds the lease outlives its last renewal (the leader renews it every third of that).
LEASE_SECONDS = 15
_lease_args = packer("lease")


class Lease:
    """One contender for the metrics lease, named `owner`."""

    def __init__(self, connection: redis.Redis, owner: str, ttl: int = LEASE_SECONDS) -> None:
        self.connection = connection
        self.where = describe(connection)
        self.owner = owner
        self.ttl = ttl
        self._script = connection.register_script(lua.source("lease"))

    def hold(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; whether we hold it now.

        Raises:
            QueueError: Redis is unreachable or refused (an outage is retryable).
        """
        _, args = _lease_args(owner=self.owner, ttl=self.ttl)
        with translating(self.where):
            return bool(self._script(args=args))
