"""`FastScript`: the hot paths' EVALSHA on a pooled connection, on a private redis-server.

The private server is ours to `SCRIPT FLUSH` and to stop: the shared one is never touched.
"""

from __future__ import annotations

import pytest
import redis

from app.infrastructure.redis.script import FastScript
from chaos.servers import PrivateRedis

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
    assert len(client.connection_pool._available_connections) == 1


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
