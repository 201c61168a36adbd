"""Redis clients for producer, worker and CLI, and the one place redis-py errors become ours.

`connect()` builds a client with redis-py's own retries off, so that `Guard` alone decides how
long an operation may keep trying (`REDIS_RETRY_SECONDS`, default 1.5 s) before it raises
`QueueUnavailableError`. No message, repr or log line ever carries the password.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.config import Settings, redact_url
from app.infrastructure.queue.errors import (
    QueueBackendError,
    QueueCommandError,
    QueueFullError,
    QueuePermissionError,
    QueueReplicationError,
    QueueTimeoutError,
    QueueUnavailableError,
)
from app.infrastructure.redis import sentinel
from app.infrastructure.redis.script import NotReplicatedError

T = TypeVar("T")

#: How an ACL refusal of a command called from a Lua script is worded (a plain ERR, not NOPERM):
#: Redis 7, then Valkey (the embedded server when redis-server is not installed).
_ACL_IN_SCRIPT = ("The user executing the script can't", "ACL failure in script")

#: How Redis says that it wants a password the client did not send (RESP3's HELLO, then RESP2).
_NO_PASSWORD = (
    "HELLO must be called with the client already authenticated",
    "Authentication required",
    "NOAUTH",
)
_NEEDS_PASSWORD = "Redis needs a password: put it in REDIS_URL (redis://USER:PASSWORD@host:port/db)"  # noqa: S105

_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ReadOnlyError)


def connect(settings: Settings, *, socket_timeout: float | None = None) -> redis.Redis:
    """A client for `settings.redis_url` (redis://, rediss://, unix://, with ACL user and password;
    redis+sentinel:// and rediss+sentinel://: the master that the sentinels name, see `sentinel.py`).

    Raises:
        QueueUnavailableError: the URL cannot be parsed (the message shows it redacted).
    """
    options = {
        "socket_timeout": socket_timeout if socket_timeout is not None else settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "retry": Retry(NoBackoff(), 0),
        "driver_info": None,  # no CLIENT SETINFO round trips on every new connection
    }
    try:
        if sentinel.is_sentinel_url(settings.redis_url):
            return sentinel.master_client(settings.redis_url, **options)
        return redis.Redis.from_url(settings.redis_url, **options)
    except ValueError as exc:
        raise QueueUnavailableError(redact_url(settings.redis_url), f"bad REDIS_URL: {exc}") from None


def describe(client: redis.Redis) -> str:
    """Where `client` points, for messages: `redis://host:port/db` or `unix://path`, never a password."""
    managed = sentinel.describe(client)
    if managed is not None:
        return managed  # redis+sentinel://sentinel,.../master name/db
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if client.connection_pool.connection_class.__name__ == "SSLConnection" else "redis"
    user = f"{kwargs['username']}@" if kwargs.get("username") else ""
    return (
        f"{scheme}://{user}{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    )


def translate(exc: redis.exceptions.RedisError, where: str) -> QueueBackendError:
    """The error of our hierarchy for a redis-py error (the caller chains it with `from exc`)."""
    message = str(exc) or type(exc).__name__
    if message.startswith(_NO_PASSWORD):
        return QueuePermissionError(where, _NEEDS_PASSWORD)
    if isinstance(exc, redis.exceptions.AuthenticationError | redis.exceptions.NoPermissionError):
        return QueuePermissionError(where, message)
    if isinstance(exc, NotReplicatedError):
        return QueueReplicationError(where, message)
    if isinstance(exc, redis.exceptions.TimeoutError):
        return QueueTimeoutError(where, f"timed out: {message}")
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return QueueFullError(where, f"out of memory, nothing was written: {message}")
    if isinstance(exc, redis.exceptions.ResponseError):
        if message.startswith("OOM"):
            return QueueFullError(where, f"out of memory, nothing was written: {message}")
        if message.startswith(("NOPERM", "NOAUTH", "WRONGPASS")) or any(
            wording in message for wording in _ACL_IN_SCRIPT
        ):
            return QueuePermissionError(where, message)
        if not isinstance(exc, redis.exceptions.ReadOnlyError):
            return QueueCommandError(where, message)
    return QueueUnavailableError(where, message)


def server_time(client: redis.Redis) -> float:
    """Redis's clock, in epoch seconds: what due times, deadlines and expiries are measured by."""
    seconds, micros = client.time()
    return seconds + micros / 1e6


@contextmanager
def translating(where: str) -> Iterator[None]:
    """Run the block, turning any redis-py error into ours (`where` names the server, redacted)."""
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise translate(exc, where) from exc


class Guard:
    """Runs Redis operations with a bounded retry on transient errors, translating every error.

    Only operations that are safe to repeat go through `call`: our scripts are idempotent by
    job id, so an enqueue whose reply was lost is found, not duplicated, on the retry.
    """

    def __init__(self, client: redis.Redis, retry_seconds: float) -> None:
        self.client = client
        self.retry_seconds = retry_seconds
        self.where = describe(client)

    def call(self, operation: Callable[[], T]) -> T:
        """Run `operation()`; retry transient failures with backoff until `retry_seconds` pass.

        Raises:
            QueueUnavailableError (or a subclass): Redis is unreachable, slow, full or refuses us.
        """
        deadline = time.monotonic() + self.retry_seconds
        pause = 0.05
        while True:
            try:
                return operation()
            except _TRANSIENT as exc:
                if (
                    isinstance(exc, redis.exceptions.AuthenticationError)
                    or time.monotonic() + pause > deadline
                ):
                    raise translate(exc, self.where) from exc
            except redis.exceptions.RedisError as exc:
                raise translate(exc, self.where) from exc
            time.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, 0.5)
