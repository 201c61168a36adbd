"""Row "replicated": an enqueue acknowledged by a replica (QUEUE_WAIT_REPLICAS=1) against one that is not.

A replica of the bench's server is started for this row only (so no other row pays for
replication) and stopped by its pid at the end. Both contenders take turns with the replica
attached: the ratio is the cost of waiting for its acknowledgement (one more round trip, from
the primary to the replica and back, inside the same call).
"""

from __future__ import annotations

import time

from bench.common import Ctx, Result
from bench.enqueue import Caller, interleaved, taskq_queue
from bench.redis_server import PrivateRedis

ROW = "replicated"


def run(ctx: Ctx) -> list[Result]:
    replica = PrivateRedis().start()
    try:
        replica.client().replicaof("127.0.0.1", ctx.server.port)
        deadline = time.monotonic() + 20
        while replica.client().info("replication")["master_link_status"] != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the bench's replica did not sync within 20 s")
            time.sleep(0.05)
        plain = taskq_queue(ctx, ctx.client())
        acked = taskq_queue(ctx, ctx.client(), wait_replicas=1)
        params = {"a": 1, "b": 2}
        callers = [
            Caller(ROW, "taskq enqueue", lambda: plain.enqueue("bench_add", params)),
            Caller(ROW, "taskq enqueue, WAIT 1 replica", lambda: acked.enqueue("bench_add", params)),
        ]
        return interleaved(ctx, callers, ctx.sizes.single // 2, warmup=50)
    finally:
        replica.stop()
        ctx.client().replicaof("NO", "ONE")  # a no-op on a primary; the replica is gone either way
