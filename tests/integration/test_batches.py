"""A huge `enqueue_many` is written in short script calls: no other client waits behind it, and
with job ids of one's own a retried batch adds nothing."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import redis

from app.infrastructure.queue.errors import DependencyError
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import BATCH_CHUNK, RQQueue
from app.infrastructure.redis.connection import connect
from chaos.servers import PrivateRedis

pytestmark = pytest.mark.integration
JOBS = 20_000


class Pinger:
    """Another client: PINGs all the while, counting the BUSY replies a long script would cause."""

    def __init__(self, client: redis.Redis) -> None:
        self.client, self.busy, self.pings = client, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.client.ping()
                self.pings += 1
            except redis.exceptions.BusyLoadingError:
                self.busy += 1
            except redis.exceptions.ResponseError as exc:
                self.busy += "BUSY" in str(exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_a_huge_batch_never_makes_other_clients_wait_and_a_retry_adds_nothing(settings):
    # Past 50 ms of one script, Redis answers other clients BUSY: a batch in one call (20,000
    # jobs, about a second of script time) would, chunks of BATCH_CHUNK never do.
    with PrivateRedis("--busy-reply-threshold", "50") as server:
        local = replace(settings, redis_url=server.url)
        queue = RQQueue(connect(local), local)
        requests = [JobRequest("add", {"a": i, "b": 1}, job_id=f"batch-{i}") for i in range(JOBS)]
        pinger = Pinger(server.client())
        try:
            ids = queue.enqueue_many(requests)
        finally:
            pinger.stop()
        client = server.client()
        assert len(ids) == JOBS and client.llen("rq:queue:default") == JOBS
        assert pinger.busy == 0 and pinger.pings > 0
        assert queue.enqueue_many(requests) == ids  # the same ids again: alive, so nothing new
        assert client.llen("rq:queue:default") == JOBS


def test_a_large_batch_with_a_missing_outside_dependency_writes_nothing(settings, r):
    queue = RQQueue(r, settings)
    requests = [JobRequest("add", {"a": i, "b": 1}) for i in range(BATCH_CHUNK * 2)]
    requests.append(JobRequest("add", {"a": 0, "b": 0}, depends_on="ghost"))
    with pytest.raises(DependencyError):
        queue.enqueue_many(requests)
    assert r.llen("rq:queue:default") == 0
