"""Sentinel end to end: a private primary, replica and 3 sentinels on loopback, one real failover.

The producer (`RQQueue`, whose scripts go through `FastScript`'s direct path) and the admin
(`QueueAdmin`, through `Guard`) use a `redis+sentinel://` URL before and after the primary is
SIGKILLed; nothing is restarted in between. Every server is stopped by its pid at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from app.config import Settings
from app.infrastructure.queue.admin import QueueAdmin
from app.infrastructure.queue.errors import QueuePermissionError, QueueUnavailableError
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.connection import Guard, connect, describe
from app.infrastructure.redis.sentinel import NoReplicasError
from chaos.sentinel import Failover, SentinelTopology
from chaos.servers import PrivateRedis
from tests.support.jobs import TEST_JOBS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def topology() -> Iterator[SentinelTopology]:
    # down-after 2 s, not 1 s: a loaded machine can make sentinels fail over on their own at 1 s.
    with SentinelTopology(replicas=1, down_after_ms=2000) as started:
        yield started


def sentinel_settings(topology: SentinelTopology, retry_seconds: float) -> Settings:
    # Longer than a failover here (down-after 2 s, election, promotion: ~3.5 s), so it rides it out.
    return Settings(redis_url=topology.url, extra_jobs=TEST_JOBS, redis_retry_seconds=retry_seconds)


def test_enqueue_and_counts_work_across_a_failover(topology):
    settings = sentinel_settings(topology, retry_seconds=10.0)
    client = connect(settings)
    queue, admin = RQQueue(client, settings), QueueAdmin(client, settings)
    assert describe(client) == topology.url  # the sentinels and the master's name, no password
    first = queue.enqueue("add", {"a": 1, "b": 2}, job_id="before-failover")
    assert {c.queue: c.queued for c in admin.counts()}["default"] == 1
    old = topology.primary()
    topology.wait_agreed(old.port, replicas=1)  # the replica has the job before the primary dies

    failover = topology.failover()  # SIGKILL; returns once every sentinel names the promoted replica
    assert topology.primary().port != old.port
    second = queue.enqueue("add", {"a": 3, "b": 4}, job_id="after-failover")
    counts = {c.queue: c for c in admin.counts()}
    assert counts["default"].queued == 2
    assert queue.get(first).status.value == "queued" and queue.get(second).status.value == "queued"
    topology.rejoin(failover)  # the old primary, restarted as a replica, in sync again


def test_an_enqueue_sent_while_the_primary_is_dead_rides_the_failover_out(topology):
    settings = sentinel_settings(topology, retry_seconds=10.0)
    client = connect(settings)
    queue = RQQueue(client, settings)
    queue.enqueue("add", {"a": 1, "b": 1}, job_id="warm-up")  # a pooled connection to the primary
    old = topology.primary()
    old.kill()  # no waiting here: the enqueue below meets the dead primary, then the promotion
    killed = time.monotonic()
    job_id = queue.enqueue("add", {"a": 5, "b": 6}, job_id="during-failover")
    new = topology.primary()
    assert new.port != old.port
    assert QueueAdmin(client, settings).counts(["default"])[0].queued >= 2
    assert queue.get(job_id).status.value == "queued"
    topology.rejoin(Failover(old, new, killed, time.monotonic() - killed))


def test_noreplicas_is_retried_as_an_outage_then_reported(topology):
    settings = sentinel_settings(topology, retry_seconds=0.5)
    client = connect(settings)
    primary = topology.primary().client()
    primary.config_set("min-replicas-to-write", "5")  # more than there are: every write is refused
    try:
        with pytest.raises(NoReplicasError):
            client.set("taskq:test:sentinel", "1")
        assert isinstance(NoReplicasError("x"), redis.exceptions.ConnectionError)
        with pytest.raises(QueueUnavailableError, match="NOREPLICAS"):
            Guard(client, settings.redis_retry_seconds).call(lambda: client.set("taskq:test:sentinel", "1"))
        with pytest.raises(QueueUnavailableError, match="NOREPLICAS"):
            RQQueue(client, settings).enqueue("add", {"a": 1, "b": 2})
    finally:
        primary.config_set("min-replicas-to-write", "0")
    assert Guard(client, 5.0).call(lambda: client.set("taskq:test:sentinel", "1"))


def test_sentinel_errors_name_the_sentinel_and_a_wrong_password_is_not_retried():
    lone = PrivateRedis(config="sentinel monitor taskq 127.0.0.1 1 1\n").start_with("--sentinel")
    try:
        lone.client().execute_command("ACL", "SETUSER", "default", "resetpass", ">s3cret")
        base = f"redis+sentinel://127.0.0.1:{lone.port}"
        wrong = connect(Settings(redis_url=f"{base}/taskq?sentinel_password=nope", redis_retry_seconds=5))
        started = time.monotonic()
        with pytest.raises(
            QueuePermissionError, match=f"every sentinel refused.*127.0.0.1:{lone.port}"
        ) as caught:
            Guard(wrong, 5).call(wrong.ping)
        assert time.monotonic() - started < 2, "a wrong password must not be retried"
        assert "nope" not in str(caught.value) and "s3cret" not in str(caught.value)
        unknown = connect(Settings(redis_url=f"{base}/orders?sentinel_password=s3cret"))
        with pytest.raises(QueueUnavailableError, match="no sentinel knows a healthy master named 'orders'"):
            Guard(unknown, 0.2).call(unknown.ping)
    finally:
        lone.remove()
