"""One connection held per thread for the hot scripts, given back to its pool when the thread ends.

Taking a connection from redis-py's pool and giving it back costs more than sending a small
script (a lock, observability counters and a `poll` to check the socket is clean, twice per
call): holding one per thread made a single enqueue 9-14% faster (bench/README.md). A thread
that ends must give its connection back, or a thread-per-request server would open one per
request and never close it: the connection is held by an object that only the thread's own
`threading.local` slot refers to, so when the thread ends (and Python drops that slot) the
object's finalizer releases the connection into the pool, where the next thread takes it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from typing import Any

import redis


class _Held:
    """A connection taken from `pool` for one thread; back to the pool when this object dies."""

    __slots__ = ("connection", "pid", "pool")

    def __init__(self, pool: redis.ConnectionPool, connection: Any) -> None:
        self.pool, self.connection, self.pid = pool, connection, os.getpid()

    def __del__(self) -> None:
        # The thread ended (or its slot was replaced). In a forked child the connection is the
        # parent's: the child's pool was reset and does not own it, so it is only forgotten.
        if self.pid == os.getpid():
            with contextlib.suppress(Exception):  # a finalizer must not raise; at exit, anything goes
                self.pool.release(self.connection)


class ThreadConnections:
    """The connection this thread holds from `pool` (taken on first use, given back at thread end)."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self._local = threading.local()

    def get(self) -> Any:
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and held.pid == os.getpid():
            return held.connection
        held = _Held(self.pool, self.pool.get_connection())
        self._local.held = held
        return held.connection


_BY_POOL: weakref.WeakKeyDictionary[redis.ConnectionPool, ThreadConnections] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def thread_connections(pool: redis.ConnectionPool) -> ThreadConnections:
    """The one `ThreadConnections` of `pool`: every script on a client shares a thread's connection."""
    with _LOCK:
        found = _BY_POOL.get(pool)
        if found is None:
            found = _BY_POOL[pool] = ThreadConnections(pool)
        return found
