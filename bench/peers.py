"""Row 6: huey (RedisHuey) and dramatiq (RedisBroker) on the same trivial job and private Redis.

Each enqueues `add(1, 2)` one by one (in turns with row 1's contenders), and one worker process
with its defaults drains such jobs (timed like row 3, from start to the last job done). Their latency with an
idle worker joins row 4. They are the `bench` extra: without it these rows say "not installed".
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import redis

from bench import drain, latency
from bench.common import Ctx, Result
from bench.enqueue import Caller
from bench.procs import BIN

HUEY_RESULTS = "huey.results.bench"  # huey stores each non-None return value in this hash
DRAMATIQ_MSGS = "dramatiq:default.msgs"  # dramatiq deletes a message from this hash when acked


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _huey(ctx: Ctx):  # type: ignore[no-untyped-def]
    os.environ["BENCH_REDIS_URL"] = ctx.url
    from bench import huey_app

    return huey_app


def _dramatiq(ctx: Ctx):  # type: ignore[no-untyped-def]
    os.environ["BENCH_REDIS_URL"] = ctx.url
    from bench import dramatiq_app

    return dramatiq_app


HUEY_COMMAND = [str(BIN / "huey_consumer"), "bench.huey_app.huey"]
DRAMATIQ_COMMAND = [str(BIN / "dramatiq"), "bench.dramatiq_app", "--processes", "1"]


def enqueue_callers(ctx: Ctx) -> list[Caller]:
    """The peers' one-by-one enqueue, timed in turns with row 1 (`enqueue.single`)."""
    callers = []
    if installed("huey"):
        huey = _huey(ctx)
        callers.append(Caller("peers enqueue", "huey", lambda: huey.add(1, 2)))
    if installed("dramatiq"):
        dramatiq = _dramatiq(ctx)
        callers.append(Caller("peers enqueue", "dramatiq", lambda: dramatiq.add.send(1, 2)))
    return callers


def drain_contenders(ctx: Ctx) -> dict[str, Callable[[], Result]]:
    """One worker process each, defaults kept, on `peer` jobs enqueued one by one beforehand."""
    n = ctx.sizes.peer
    out: dict[str, Callable[[], Result]] = {}
    if installed("huey"):

        def huey() -> Result:
            app = _huey(ctx)

            def fill(_ctx: Ctx, count: int) -> None:
                for _ in range(count):
                    app.add(1, 2)

            def done(conn: redis.Redis) -> int:
                return int(conn.hlen(HUEY_RESULTS))

            run = drain.drain(ctx, "huey", n, [HUEY_COMMAND], 1, fill, done, burst=False)
            run.row = "peers drain"
            return run

        out["huey"] = huey
    if installed("dramatiq"):

        def dramatiq() -> Result:
            app = _dramatiq(ctx)

            def fill(_ctx: Ctx, count: int) -> None:
                for _ in range(count):
                    app.add.send(1, 2)

            def done(conn: redis.Redis) -> int:
                return n - int(conn.hlen(DRAMATIQ_MSGS))

            run = drain.drain(ctx, "dramatiq", n, [DRAMATIQ_COMMAND], 1, fill, done, burst=False)
            run.row = "peers drain"
            return run

        out["dramatiq"] = dramatiq
    return out


def latency_contenders(ctx: Ctx) -> dict[str, Callable[[], Result]]:
    out: dict[str, Callable[[], Result]] = {}
    if installed("huey"):

        def huey() -> Result:
            app = _huey(ctx)
            return latency.measure(ctx, "huey", HUEY_COMMAND, lambda key: app.stamp(key), ctx.sizes.latency)

        out["huey"] = huey
    if installed("dramatiq"):

        def dramatiq() -> Result:
            app = _dramatiq(ctx)
            return latency.measure(
                ctx, "dramatiq", DRAMATIQ_COMMAND, lambda key: app.stamp.send(key), ctx.sizes.latency_slow
            )

        out["dramatiq"] = dramatiq
    return out
