"""Row 6: huey (RedisHuey) and dramatiq (RedisBroker) on the same trivial job and private Redis.

Each enqueues `add(1, 2)` one by one (timed like row 1), then one worker process with its
defaults drains them (timed like row 3, from start to the last job done). Their latency with an
idle worker joins row 4. They are the `bench` extra: without it these rows say "not installed".
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

import redis

from bench import drain, latency
from bench.common import Ctx, Result
from bench.enqueue import _timed_calls
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


def contenders(ctx: Ctx) -> dict[str, Callable[[], list[Result]]]:
    """Each runs enqueue then drain, and returns both results."""
    n = ctx.sizes.peer
    out: dict[str, Callable[[], list[Result]]] = {}

    if installed("huey"):

        def huey() -> list[Result]:
            app = _huey(ctx)
            ctx.server.wipe()
            enq = _timed_calls(lambda: app.add(1, 2), n, 1, "peers enqueue", "huey")
            ctx.server.wipe()  # drop the warm-up calls: exactly n to drain

            def fill(_ctx: Ctx, count: int) -> None:
                for _ in range(count):
                    app.add(1, 2)

            def done(conn: redis.Redis) -> int:
                return int(conn.hlen(HUEY_RESULTS))

            run = drain.drain(ctx, "huey", n, [HUEY_COMMAND], 1, fill, done, burst=False)
            run.row = "peers drain"
            return [enq, run]

        out["huey"] = huey

    if installed("dramatiq") and installed("redis"):

        def dramatiq() -> list[Result]:
            app = _dramatiq(ctx)
            ctx.server.wipe()
            enq = _timed_calls(lambda: app.add.send(1, 2), n, 1, "peers enqueue", "dramatiq")

            def fill(_ctx: Ctx, count: int) -> None:
                for _ in range(count):
                    app.add.send(1, 2)

            def done(conn: redis.Redis) -> int:
                return n - int(conn.hlen(DRAMATIQ_MSGS))

            run = drain.drain(ctx, "dramatiq", n, [DRAMATIQ_COMMAND], 1, fill, done, burst=False)
            run.row = "peers drain"
            return [enq, run]

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
