"""The chaos job: one line in the ledger per execution, on a Redis that the scenarios never break."""

from __future__ import annotations

import asyncio
import os
import time

import redis
import redis.asyncio as aioredis

_ledger: redis.Redis | None = None
_async_ledgers: dict[
    int, aioredis.Redis
] = {}  # one per event loop: a redis.asyncio pool is bound to its loop


def record(token: str, work: float = 0.0, pad: str = "", not_before: float = 0.0, span: str = "") -> str:
    """Count this execution of `token` in the ledger (a separate redis-server), after `work` seconds.

    `pad` only makes the job bigger (the full-Redis scenario). With `not_before` (an epoch time),
    a run that starts earlier by the ledger's clock (not the worker's: it may be off) is counted
    under `early`. With `span` (a label, say the job's limit key), the execution's start and end
    by the ledger's clock go in the `spans` list: `<execution> start|end <time> <label>`.
    """
    global _ledger
    if _ledger is None or _ledger.connection_pool.pid != os.getpid():
        # Timeouts, so that a job cut off from the ledger (partition-60s) fails and is retried
        # instead of hanging until TCP gives up.
        _ledger = redis.Redis.from_url(
            os.environ["CHAOS_LEDGER_URL"], socket_timeout=10, socket_connect_timeout=5
        )
    if not_before and _now(_ledger) < not_before:
        _ledger.incr("early")
    execution = os.urandom(8).hex()
    if span:
        _ledger.rpush("spans", f"{execution} start {_now(_ledger)!r} {span}")
    if work:
        time.sleep(work)
    with _ledger.pipeline(transaction=True) as pipe:
        pipe.incr(f"exec:{token}")
        pipe.sadd("done", token)
        pipe.execute()
    if span:
        _ledger.rpush("spans", f"{execution} end {_now(_ledger)!r} {span}")
    return token


def _now(ledger: redis.Redis) -> float:
    seconds, micros = ledger.time()
    return float(seconds + micros / 1e6)


async def record_async(token: str, work: float = 0.0) -> str:
    """`record` as an `async def` job (`--concurrency N` workers run it on their loop): awaits
    `work` seconds, then counts this execution of `token` in the ledger."""
    loop = id(asyncio.get_running_loop())
    ledger = _async_ledgers.get(loop)
    if ledger is None:
        ledger = _async_ledgers[loop] = aioredis.Redis.from_url(
            os.environ["CHAOS_LEDGER_URL"], socket_timeout=10, socket_connect_timeout=5
        )
    if work:
        await asyncio.sleep(work)
    async with ledger.pipeline(transaction=True) as pipe:
        pipe.incr(f"exec:{token}")
        pipe.sadd("done", token)
        await pipe.execute()
    return token
