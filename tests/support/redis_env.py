"""Which Redis the tests use, and how they keep to their own keys on a shared server.

REDIS_URL if set; else the local server at TASKQ_TEST_LOCAL_REDIS (default 127.0.0.1:6379) if
it answers; else an embedded server started for the run. On a shared server the run takes a
database number no other run holds (a lock key in it) and deletes only `rq:*` and `taskq:*`
keys there: never FLUSHDB/FLUSHALL.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

import redis

TEST_DBS = range(1, 16)
LOCK_KEY = "taskq:test-run-lock"
LOCK_SECONDS = 3600


def local_redis_answers() -> str | None:
    target = os.environ.get("TASKQ_TEST_LOCAL_REDIS", "127.0.0.1:6379")
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return f"redis://{host}:{port}/0"
    except OSError:
        return None
    return None


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("db="))
        return f"unix://{parts.path}?" + f"{query}&db={db}".lstrip("&")
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def claim_database(url: str) -> tuple[str, str]:
    """Lock a free test database on the server at `url`: (url with that db, lock token)."""
    token = uuid.uuid4().hex
    for db in TEST_DBS:
        candidate = with_db(url, db)
        client = redis.Redis.from_url(candidate)
        try:
            if client.set(LOCK_KEY, token, nx=True, ex=LOCK_SECONDS):
                return candidate, token
        finally:
            client.close()
    raise RuntimeError(f"every test database {TEST_DBS.start}..{TEST_DBS.stop - 1} is locked by another run")


def release_database(url: str, token: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        delete_own_keys(client)
        if client.get(LOCK_KEY) == token.encode():
            client.delete(LOCK_KEY)
    finally:
        client.close()


def delete_own_keys(client: redis.Redis) -> int:
    """Delete this project's keys (rq:*, taskq:*) in the client's database, except the run lock."""
    deleted = 0
    for pattern in ("rq:*", "taskq:*"):
        batch = [key for key in client.scan_iter(pattern, count=1000) if key != LOCK_KEY.encode()]
        for start in range(0, len(batch), 500):
            deleted += client.delete(*batch[start : start + 500])
    return deleted


def own_keys(client: redis.Redis) -> set[bytes]:
    return {key for pattern in ("rq:*", "taskq:*") for key in client.scan_iter(pattern)} - {LOCK_KEY.encode()}


def all_keys(client: redis.Redis) -> set[bytes]:
    return set(client.scan_iter("*")) - {LOCK_KEY.encode()}
