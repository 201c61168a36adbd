"""The asyncio side of `connection.py`: a `redis.asyncio` client, its guard, and its scripts.

Everything that decides anything is shared with the sync side: `translate` turns redis-py's
errors into ours (redis.asyncio raises the same exception classes), the retry window is
`REDIS_RETRY_SECONDS`, and the scripts are the same sources from `lua.py`. Only the I/O differs.

Sentinel URLs (`redis+sentinel://`) are refused here with a clear error: the sync side resolves
the master and follows failovers (`sentinel.py`); the asyncio side does not do that yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.config import Settings, redact_url
from app.infrastructure.queue.errors import QueueUnavailableError
from app.infrastructure.redis import sentinel
from app.infrastructure.redis.connection import RetryWindow
from app.infrastructure.redis.script import NotReplicatedError

T = TypeVar("T")


def connect_async(settings: Settings, *, socket_timeout: float | None = None) -> aioredis.Redis:
    """A `redis.asyncio` client for `settings.redis_url` (redis://, rediss://, unix://).

    Raises:
        QueueUnavailableError: the URL cannot be parsed, or is a Sentinel URL (not supported on
            asyncio yet: use the sync `RQQueue`, or point REDIS_URL at the master).
    """
    where = redact_url(settings.redis_url)
    if sentinel.is_sentinel_url(settings.redis_url):
        raise QueueUnavailableError(
            where,
            "AsyncRQQueue does not support Sentinel URLs yet: use RQQueue (sync), or a redis:// URL",
        )
    try:
        return aioredis.Redis.from_url(
            settings.redis_url,
            socket_timeout=socket_timeout if socket_timeout is not None else settings.redis_socket_timeout,
            socket_connect_timeout=settings.redis_connect_timeout,
            retry=Retry(NoBackoff(), 0),
            driver_info=None,
        )
    except ValueError as exc:
        raise QueueUnavailableError(where, f"bad REDIS_URL: {exc}") from None


def describe_async(client: aioredis.Redis) -> str:
    """Where `client` points, for messages (as `connection.describe`), never a password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if "SSL" in client.connection_pool.connection_class.__name__ else "redis"
    user = f"{kwargs['username']}@" if kwargs.get("username") else ""
    return (
        f"{scheme}://{user}{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    )


class AsyncGuard:
    """`connection.Guard` for coroutines: the same bounded retry, the same translation."""

    def __init__(self, client: aioredis.Redis, retry_seconds: float) -> None:
        self.client = client
        self.retry_seconds = retry_seconds
        self.where = describe_async(client)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Await `operation()`; retry transient failures with backoff until `retry_seconds` pass.

        Raises:
            QueueUnavailableError (or a subclass): Redis is unreachable, slow, full or refuses us.
        """
        window = RetryWindow(self.where, self.retry_seconds)
        while True:
            try:
                return await operation()
            except redis.exceptions.RedisError as exc:
                await asyncio.sleep(window.pause_after(exc))


class AsyncScript:
    """A script by EVALSHA on a `redis.asyncio` client, loaded again on NOSCRIPT (a restarted
    or flushed server), as `script.FastScript` does on the sync side."""

    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = client.register_script(source).sha  # computed locally: no round trip

    async def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.sha = await self.client.script_load(self.source)
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)

    async def acked(
        self, replicas: int, timeout_ms: int, keys: Sequence[Any] = (), args: Sequence[Any] = ()
    ) -> Any:
        """The script, then `WAIT replicas timeout_ms` on the same connection (one pipeline), as
        `FastScript.acked`.

        Raises:
            NotReplicatedError: fewer replicas acknowledged the write in time (it is on the primary).
        """
        for _ in range(2):  # a second time only after loading the script (NOSCRIPT)
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.evalsha(self.sha, len(keys), *keys, *args)
                pipe.execute_command("WAIT", replicas, timeout_ms)
                try:
                    reply, acknowledged = await pipe.execute()
                except redis.exceptions.NoScriptError:
                    self.sha = await self.client.script_load(self.source)
                    continue
            if acknowledged < replicas:
                raise NotReplicatedError(
                    f"{acknowledged} of {replicas} replica(s) acknowledged the write within {timeout_ms} ms"
                )
            return reply
        raise redis.exceptions.NoScriptError("the script could not be loaded")
