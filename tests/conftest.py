"""Shared fixtures: a real Redis (shared, local or embedded), settings for it, clean keys."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from app.config import Settings
from app.infrastructure.redis.embedded import EmbeddedRedis
from tests.support.jobs import TEST_JOBS
from tests.support.processes import LIVE
from tests.support.redis_env import claim_database, delete_own_keys, local_redis_answers, release_database

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL (with this run's own database) of the Redis the tests talk to."""
    explicit = os.environ.get("REDIS_URL")
    server = None
    base = explicit or local_redis_answers()
    if base is None:
        server = EmbeddedRedis().start()
        base = server.url
    url, token = claim_database(base)
    client = redis.Redis.from_url(url)
    delete_own_keys(client)
    client.close()
    try:
        yield url
    finally:
        for worker in list(LIVE):
            worker.stop()
        release_database(url, token)
        if server is not None:
            server.stop()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the test database; this project's keys are deleted after each test."""
    client = redis.Redis.from_url(redis_url)
    yield client
    delete_own_keys(client)
    client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: the test jobs registered, quick retries and upkeep."""
    return Settings(
        redis_url=redis_url,
        extra_jobs=TEST_JOBS,
        retry_max=0,
        retry_base=0.2,
        retry_factor=2.0,
        retry_cap=2.0,
        heartbeat_interval=0.5,
        maintenance_interval=1.0,
        idle_poll=0.2,
        documents_dir=ROOT / "data" / "documents",
        ingested_dir=tmp_path / "ingested",
        redis_retry_seconds=0.5,
    )
