"""A worker without a signing key says so, once, when its Redis is not on loopback."""

from __future__ import annotations

import socket
from dataclasses import replace
from urllib.parse import urlsplit, urlunsplit

import pytest

from app.infrastructure.redis.locality import is_loopback, signing_warning
from tests.support.processes import WorkerProcess

KEY = b"k" * 32


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://127.1.2.3/0",
        "redis://localhost:6379",
        "redis://LOCALHOST.:6379",
        "rediss://user:pw@localhost:6380/1?ssl_cert_reqs=none",
        "redis://[::1]:6379/0",
        "redis://[::ffff:127.0.0.1]:6379/0",
        "redis://app.localhost:6379",
        "redis://",
        "redis:///0",
        "unix:///run/redis.sock?db=2",
        "unix:/tmp/redis.sock",
        "redis://:secret@127.0.0.1:6379",
    ],
)
def test_local_urls_are_loopback(url):
    assert is_loopback(url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://10.0.0.5:6379/0",
        "rediss://redis.example.com:6380/0",
        "redis://[2001:db8::1]:6379",
        "redis://[::ffff:10.0.0.1]:6379",
        "redis://0.0.0.0:6379",
        "redis://localhost.example.com",
        "redis://127.0.0.1.example.com",
        "redis://vm:6379",  # a name is not resolved: where it points may change
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:99999999",
        "not a url",
        "",
    ],
)
def test_everything_else_is_not_loopback(url):
    assert not is_loopback(url)


def test_the_warning_needs_both_no_key_and_a_remote_redis(settings):
    remote = replace(settings, redis_url="redis://:hunter2hunter2@10.0.0.5:6379/0")
    warning = signing_warning(remote)
    assert warning is not None and "QUEUE_SIGNING_KEY" in warning and "SECURITY.md" in warning
    assert "hunter2" not in warning and "10.0.0.5" in warning
    assert "unpickle" in warning
    assert "registered job" in (signing_warning(replace(remote, serializer="json")) or "")
    assert signing_warning(replace(remote, signing_key=KEY)) is None
    assert signing_warning(replace(remote, redis_url="redis://127.0.0.1:6379/0")) is None


def _via_host_name(url: str) -> str:
    """The same server, named by this machine's host name instead of an address."""
    host = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        addresses = set()
    if not addresses or not all(is_loopback(f"redis://{address}") for address in addresses):
        pytest.skip(f"host name {host!r} does not resolve to loopback only here")
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{host}:{parts.port}", parts.path, parts.query, ""))


@pytest.mark.e2e
def test_a_worker_on_a_non_loopback_url_without_a_key_warns_exactly_once(settings, r):
    # The server is ours on loopback, reached by host name: no mock, and the URL is not loopback.
    named = replace(settings, redis_url=_via_host_name(settings.redis_url))
    cases = [(named, 1), (replace(named, signing_key=KEY), 0), (settings, 0)]
    for case, expected in cases:
        worker = WorkerProcess(case, "--burst").start(wait_ready=False)
        assert worker.wait(timeout=30) == 0, worker.output
        assert worker.output.count("QUEUE_SIGNING_KEY is not set") == expected, worker.output
        assert "worker started" in worker.output


@pytest.mark.e2e
def test_a_supervisor_warns_once_for_all_its_workers(settings, r):
    named = replace(settings, redis_url=_via_host_name(settings.redis_url))
    worker = WorkerProcess(named, "--processes", "2").start()
    worker.stop()
    assert worker.output.count("QUEUE_SIGNING_KEY is not set") == 1, worker.output
    assert worker.output.count("worker started") == 2, worker.output
