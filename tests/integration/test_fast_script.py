"""`FastScript`: the hot paths' EVALSHA on a connection held per thread, on a private redis-server.

The private server is ours to `SCRIPT FLUSH` and to stop: the shared one is never touched.
"""

from __future__ import annotations

import os
import threading

import pytest
import redis

from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.script import FastScript
from chaos.servers import PrivateRedis
from tests.support.processes import wait_until

SOURCE = "redis.call('RPUSH', KEYS[1], ARGV[1]); return redis.call('LLEN', KEYS[1])"


@pytest.fixture
def server():
    # A busy script answers other clients after 100 ms (default 5 s), so SCRIPT KILL is quick.
    with PrivateRedis("--busy-reply-threshold", "100") as private:
        yield private


def test_it_runs_and_reloads_a_script_the_server_forgot(server):
    client = redis.Redis.from_url(server.url_for())
    script = FastScript(client, SOURCE)
    assert script(keys=["k"], args=["a"]) == 1
    client.script_flush()
    assert script(keys=["k"], args=["b"]) == 2
    assert client.lrange("k", 0, -1) == [b"a", b"b"]


def test_an_error_reply_is_redis_pys_own_and_the_connection_stays_usable(server):
    client = redis.Redis.from_url(server.url_for())
    client.set("k", "not a list")
    script = FastScript(client, SOURCE)
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        script(keys=["k"], args=["a"])
    assert script(keys=["other"], args=["a"]) == 1
    pool = client.connection_pool  # the one connection this thread holds, not a second one
    assert pool._created_connections == 1 and len(pool._in_use_connections) == 1


def test_a_call_that_timed_out_leaves_no_half_read_connection(server):
    client = redis.Redis.from_url(server.url_for(), socket_timeout=0.2)
    script = FastScript(client, "redis.call('SET', KEYS[1], ARGV[1]); return 1")
    assert script(keys=["k"], args=["v"]) == 1
    blocker = FastScript(client, "local t = redis.call('TIME'); while true do end")
    with pytest.raises(redis.exceptions.TimeoutError):
        blocker()
    # The timed-out connection was disconnected, so its late reply can never answer a later call.
    redis.Redis.from_url(server.url_for()).script_kill()
    assert script(keys=["k"], args=["w"]) == 1
    assert client.get("k") == b"w"


def test_a_single_connection_client_keeps_redis_pys_path(server):
    client = redis.Redis.from_url(server.url_for(), single_connection_client=True)
    script = FastScript(client, SOURCE)
    assert script(keys=["k"], args=["a"]) == 1
    assert script(keys=["k"], args=["b"]) == 2


def _in_threads(target, count: int, at_once: int = 10) -> None:
    """Run `target` in `count` short-lived threads, `at_once` alive at a time."""
    for _ in range(count // at_once):
        threads = [threading.Thread(target=target) for _ in range(at_once)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
            assert not thread.is_alive()


def test_a_thread_that_ends_gives_its_connection_back(server):
    client = redis.Redis.from_url(server.url_for())
    script = FastScript(client, SOURCE)
    pool = client.connection_pool
    _in_threads(lambda: script(keys=["k"], args=["a"]), 200)
    wait_until(lambda: not pool._in_use_connections, what="every ended thread's connection back in the pool")
    assert client.llen("k") == 200
    assert pool._created_connections <= 10  # the next threads took them again: no leak
    assert len(client.client_list()) <= 11  # and the server agrees (+1: this client)


def test_a_thread_per_request_producer_does_not_leak_connections(settings, r):
    queue = RQQueue(r, settings)
    ids: list[str] = []
    _in_threads(lambda: ids.append(queue.enqueue("add", {"a": 1, "b": 2})), 200)
    pool = r.connection_pool
    wait_until(lambda: not pool._in_use_connections, what="every ended thread's connection back in the pool")
    assert len(set(ids)) == 200 and r.llen("rq:queue:default") == 200
    assert pool._created_connections <= 10


def test_a_forked_child_takes_a_connection_of_its_own(server):
    client = redis.Redis.from_url(server.url_for())
    script = FastScript(client, SOURCE)
    assert script(keys=["k"], args=["parent"]) == 1  # this thread holds a connection now
    pid = os.fork()
    if pid == 0:  # the child: the parent's socket must not be used here
        code = 1
        try:
            code = 0 if script(keys=["k"], args=["child"]) == 2 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert script(keys=["k"], args=["parent"]) == 3  # the parent's connection reads its own replies
