"""A Lua script called on a connection directly: the hot paths' way to run EVALSHA.

redis-py's `Script.__call__` goes through `Redis.execute_command`, whose per-command bookkeeping
(retry wrapper, observability hooks, response callbacks) costs about 15 us of a ~100 us round
trip on loopback; measured in one process, interleaved, on a 2-core VM. Every enqueue and every
job the worker claims or finishes is one script call, so this class sends EVALSHA itself and
reads the reply. With a plain `ConnectionPool` each thread holds one connection for its calls
(`held.py`: taking it from the pool and giving it back per call cost 9-14% of an enqueue) and
gives it back when the thread ends; other pools (a `BlockingConnectionPool` sized for its
threads, say) lend one per call. Errors are redis-py's own (replies are parsed by the
connection), so callers translate them as before. A connection that failed mid-call is
disconnected before it is used again, so no reply is left unread on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from app.infrastructure.redis.held import thread_connections

try:
    from hiredis import pack_command as _pack
except ImportError:  # redis[hiredis] is a dependency, but a plain redis-py works too
    _pack = None  # type: ignore[assignment]


class FastScript:
    """`redis_conn.register_script(source)`, with a cheaper call for plain `redis.Redis` clients."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self.client = client
        self.script = client.register_script(source)
        # A single-connection client (or a subclass with its own command path) keeps redis-py's.
        self._direct = type(client) is redis.Redis and client.connection is None
        pool = client.connection_pool
        self._held = thread_connections(pool) if self._direct and type(pool) is redis.ConnectionPool else None

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        if not self._direct:
            return self.script(keys=keys, args=args)
        if self._held is not None:
            return self._run(self._held.get(), keys, args)
        pool = self.client.connection_pool
        connection = pool.get_connection()
        try:
            return self._run(connection, keys, args)
        finally:
            pool.release(connection)

    def _run(self, connection: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            try:
                return self._evalsha(connection, keys, args)
            except redis.exceptions.NoScriptError:  # a restarted or flushed server: load, run again
                connection.send_command("SCRIPT", "LOAD", self.script.script)
                self.script.sha = connection.read_response().decode()
                return self._evalsha(connection, keys, args)
        except redis.exceptions.ResponseError:
            raise  # the reply was read: the connection is clean
        except BaseException:
            connection.disconnect()  # it connects again on its next command
            raise

    def _evalsha(self, connection: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        command = ("EVALSHA", self.script.sha, len(keys), *keys, *args)
        try:
            # hiredis packs our str / bytes / int arguments as redis-py would, without its
            # per-argument type checks (~9 us of an enqueue's ~40 us of Python on this VM).
            packed = _pack(command) if _pack is not None else None
        except TypeError:
            packed = None  # something else (None, a bool): redis-py's packer says what is wrong
        if packed is None:
            connection.send_command(*command)
        else:
            connection.send_packed_command([packed])
        return connection.read_response()

    def acked(
        self, replicas: int, timeout_ms: int, keys: Sequence[Any] = (), args: Sequence[Any] = ()
    ) -> Any:
        """Run the script, then `WAIT replicas timeout_ms` on the same connection (one pipeline).

        WAIT counts the replicas that hold this connection's writes, so both must share one.

        Raises:
            NotReplicatedError: fewer replicas acknowledged the write in time (it is on the primary).
        """
        pipe = self.client.pipeline(transaction=False)
        self.script(keys=keys, args=args, client=pipe)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        reply, acknowledged = pipe.execute()
        if acknowledged < replicas:
            raise NotReplicatedError(
                f"{acknowledged} of {replicas} replica(s) acknowledged the write within {timeout_ms} ms"
            )
        return reply


class NotReplicatedError(redis.exceptions.ConnectionError):
    """Too few replicas acknowledged a write: transient (a replica resyncing), so `Guard` retries it."""
