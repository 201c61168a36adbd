"""QUEUE_WAIT_REPLICAS: an enqueue returns once a replica holds the job, else raises, retry-safe.

A private primary and replica on loopback (stopped by pid at the end). A replica frozen with
SIGSTOP cannot acknowledge: the enqueue retries for REDIS_RETRY_SECONDS, then raises
`QueueReplicationError` naming the job, which is on the primary exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from app.bootstrap import bootstrap_async
from app.config import ConfigError, Settings
from app.infrastructure.queue.errors import QueueReplicationError
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.connection import connect
from chaos.servers import PrivateRedis
from tests.support.jobs import TEST_JOBS
from tests.support.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[PrivateRedis, PrivateRedis]]:
    with PrivateRedis() as primary, PrivateRedis() as replica:
        replica.client().replicaof("127.0.0.1", primary.port)
        wait_until(lambda: primary.client().info("replication")["connected_slaves"] == 1, timeout=20)
        wait_until(lambda: replica.client().info("replication")["master_link_status"] == "up", timeout=20)
        yield primary, replica


def queue_on(primary: PrivateRedis, replicas: int) -> RQQueue:
    settings = Settings(
        redis_url=primary.url,
        extra_jobs=TEST_JOBS,
        wait_replicas=replicas,
        wait_timeout_ms=200,
        redis_retry_seconds=1.0,
    )
    return RQQueue(connect(settings), settings)


def queued_ids(client: redis.Redis) -> list[bytes]:
    return client.lrange("rq:queue:default", 0, -1)


def test_an_acknowledged_enqueue_is_on_the_replica_when_it_returns(pair):
    primary, replica = pair
    queue = queue_on(primary, replicas=1)
    one = queue.enqueue("add", {"a": 1, "b": 2})
    many = queue.enqueue_many([JobRequest("add", {"a": i, "b": i}) for i in range(5)])
    # No wait: WAIT returned only once the replica had processed both writes.
    assert all(replica.client().exists(f"rq:job:{job_id}") for job_id in [one, *many])


def test_a_replica_that_cannot_acknowledge_fails_the_enqueue_and_a_retry_by_id_is_safe(pair):
    primary, replica = pair
    queue = queue_on(primary, replicas=1)
    replica.pause()
    try:
        with pytest.raises(QueueReplicationError) as raised:
            queue.enqueue("add", {"a": 1, "b": 2})
        (job_id,) = raised.value.job_ids
        assert "0 of 1 replica(s) acknowledged" in str(raised.value) and job_id in str(raised.value)
        # Retried inside the bounded retry more than once: still one job, pushed once.
        assert queued_ids(primary.client()).count(job_id.encode()) == 1
        with pytest.raises(QueueReplicationError):
            queue.enqueue_many([JobRequest("add", {"a": 2, "b": 2}, job_id=job_id)])
        # Without the setting, the same enqueue does not wait for the frozen replica.
        assert queue_on(primary, replicas=0).enqueue("add", {"a": 3, "b": 3})
    finally:
        replica.resume()
    # The caller's retry by id, once the replica is back: found, acknowledged, not created twice.
    assert queue.enqueue("add", {"a": 1, "b": 2}, job_id=job_id) == job_id
    assert queued_ids(primary.client()).count(job_id.encode()) == 1
    assert replica.client().exists(f"rq:job:{job_id}")


def test_a_group_waits_for_its_replica_and_a_retry_by_group_id_writes_nothing_twice(pair):
    """Issue 14: a workflow is one script; it is acknowledged, or refused, as one enqueue is."""
    primary, replica = pair
    queue = queue_on(primary, replicas=1)
    children = [JobRequest("add", {"a": i, "b": i}, job_id=f"g-child-{i}") for i in range(3)]
    gid = queue.group(children, on_success=JobRequest("echo", {}), group_id="replicated-group")
    assert replica.client().exists(f"taskq:wf:{gid}", "rq:job:g-child-2") == 2
    replica.pause()
    try:
        with pytest.raises(QueueReplicationError) as raised:
            queue.group([JobRequest("add", {"a": 1, "b": 1}, job_id="g2-child")], group_id="g2")
        assert "g2-child" in raised.value.job_ids
    finally:
        replica.resume()
    assert queue.group([JobRequest("add", {"a": 1, "b": 1}, job_id="g2-child")], group_id="g2") == "g2"
    assert queued_ids(primary.client()).count(b"g2-child") == 1
    assert queue.workflow("g2").total == 1


def test_more_replicas_than_exist_is_an_error_not_a_hang(pair):
    primary, _ = pair
    with pytest.raises(QueueReplicationError, match="1 of 2 replica"):
        queue_on(primary, replicas=2).enqueue("add", {"a": 1, "b": 2})


def test_the_setting_is_read_from_the_environment_and_checked():
    settings = Settings.from_env({"QUEUE_WAIT_REPLICAS": "1", "QUEUE_WAIT_TIMEOUT_MS": "250"})
    assert (settings.wait_replicas, settings.wait_timeout_ms) == (1, 250)
    with pytest.raises(ConfigError, match="QUEUE_WAIT_REPLICAS"):
        Settings.from_env({"QUEUE_WAIT_REPLICAS": "-1"})


def test_the_asyncio_producer_waits_for_replicas_too(pair):
    primary, replica = pair
    settings = Settings(
        redis_url=primary.url,
        extra_jobs=TEST_JOBS,
        wait_replicas=1,
        wait_timeout_ms=200,
        redis_retry_seconds=1.0,
    )

    async def main() -> tuple[str, list[str], QueueReplicationError]:
        services = bootstrap_async(settings)
        try:
            one = await services.queue.enqueue("add", {"a": 1, "b": 2})
            many = await services.queue.enqueue_many([JobRequest("add", {"a": i, "b": i}) for i in range(3)])
            replica.pause()
            try:
                with pytest.raises(QueueReplicationError) as raised:
                    await services.queue.enqueue("add", {"a": 5, "b": 5})
            finally:
                replica.resume()
            return one, many, raised.value
        finally:
            await services.aclose()

    one, many, error = asyncio.run(main())
    assert all(replica.client().exists(f"rq:job:{job_id}") for job_id in [one, *many])
    (job_id,) = error.job_ids
    assert "0 of 1 replica(s) acknowledged" in str(error)
    assert queued_ids(primary.client()).count(job_id.encode()) == 1  # retried, written once
