"""AsyncRQQueue on its own loop: what the contract suite (which runs every case on it) cannot show."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import redis
import redis.asyncio as aioredis

from app.bootstrap import bootstrap, bootstrap_async
from app.infrastructure.queue import AsyncRQQueue
from app.infrastructure.queue.errors import (
    BatchError,
    InvalidOptionError,
    QueueUnavailableError,
    UnknownJobError,
)
from app.infrastructure.queue.port import JobRequest, JobStatus
from app.infrastructure.queue.rq_queue import RQQueue


def run(coro):
    return asyncio.run(coro)


def test_many_concurrent_enqueues_on_one_loop_each_make_one_job(settings, r):
    async def main():
        services = bootstrap_async(settings)
        try:
            ids = await asyncio.gather(
                *(services.queue.enqueue("add", {"a": i, "b": 1}) for i in range(200)),
                *(services.queue.enqueue("add", {"a": 0, "b": 0}, job_id="same-key") for _ in range(20)),
            )
        finally:
            await services.aclose()
        return ids

    ids = run(main())
    assert len(set(ids)) == 201 and ids.count("same-key") == 20
    sync = RQQueue(r, settings)
    assert {sync.get(job_id).status for job_id in set(ids)} == {JobStatus.QUEUED}
    assert sync.get(ids[7]).params == {"a": 7, "b": 1}


def test_bad_input_raises_before_any_round_trip(settings, r):
    async def main():
        services = bootstrap_async(settings)
        try:
            with pytest.raises(UnknownJobError):
                await services.queue.enqueue("no_such_job", {})
        finally:
            await services.aclose()

    run(main())
    assert r.keys("rq:job:*") == []


def test_an_unreachable_redis_is_our_error_after_the_bounded_retry(settings):
    down = replace(settings, redis_url="redis://127.0.0.1:1/0", redis_retry_seconds=0.2)

    async def main():
        services = bootstrap_async(down)
        try:
            with pytest.raises(QueueUnavailableError) as caught:
                await services.queue.enqueue("add", {"a": 1, "b": 2})
        finally:
            await services.aclose()
        return caught.value

    error = run(main())
    assert error.retryable and "127.0.0.1:1" in str(error)


def test_a_sentinel_url_is_refused_with_a_clear_error(settings):
    services = bootstrap_async(replace(settings, redis_url="redis+sentinel://127.0.0.1:26379/mymaster/0"))
    with pytest.raises(QueueUnavailableError, match="Sentinel"):
        services.queue  # noqa: B018


def test_a_decoding_client_is_refused(settings):
    client = aioredis.Redis(decode_responses=True)
    with pytest.raises(InvalidOptionError, match="decode_responses"):
        AsyncRQQueue(client, settings)


def test_a_batch_refused_on_its_first_chunk_raises_the_error_with_its_cause(settings):
    down = replace(settings, redis_url="redis://127.0.0.1:1/0", redis_retry_seconds=0.1)
    requests = [JobRequest("add", {"a": i, "b": 1}) for i in range(150)]  # two chunks

    async def main():
        services = bootstrap_async(down)
        try:
            with pytest.raises(QueueUnavailableError) as caught:
                await services.queue.enqueue_many(requests)
        finally:
            await services.aclose()
        return caught.value

    for error in (run(main()), _sync_failure(down, requests)):
        assert not isinstance(error, BatchError)  # nothing was written: not a partial batch
        assert isinstance(error.__cause__, redis.exceptions.ConnectionError)


def _sync_failure(settings, requests):
    with pytest.raises(QueueUnavailableError) as caught:
        bootstrap(settings).queue.enqueue_many(requests)
    return caught.value
