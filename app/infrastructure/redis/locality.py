"""Whether a Redis URL points at this machine, and the start warning when it does not and nothing is signed.

Anyone who can write to Redis can write a job; unsigned pickle data from such a writer runs code in
the worker. On loopback that writer is already on this machine; elsewhere it may be anyone on
the network, so a worker without `QUEUE_SIGNING_KEY` says so once, at start (SECURITY.md).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from app.config import Settings, redact_url
from app.infrastructure.redis import sentinel

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback(url: str) -> bool:
    """Whether `url` (redis://, rediss://, unix://, redis+sentinel://) reaches Redis on this machine only.

    A unix socket is local; so are `localhost`, 127.0.0.0/8, ::1 and IPv4-mapped loopback. A URL
    with no host means `localhost` to redis-py. A Sentinel URL is loopback only if every sentinel
    host is (the master they name is known only once connected, so it is not checked here).
    Anything unparseable is not loopback.
    """
    if sentinel.is_sentinel_url(url):
        hosts = sentinel.hosts(url)
        return bool(hosts) and all(_loopback_host(host) for host in hosts or ())
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme == "unix":
        return True
    if scheme not in ("redis", "rediss"):
        return False
    return not host or _loopback_host(host)


def _loopback_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def signing_warning(settings: Settings) -> str | None:
    """The warning a worker logs at start for these settings, or None when there is nothing to say."""
    if settings.signing_key or is_loopback(settings.redis_url):
        return None
    risk = (
        "can make this worker run any registered job with any params"
        if settings.serializer == "json"
        else "can make this worker unpickle their data, which runs any code they choose"
    )
    return (
        f"QUEUE_SIGNING_KEY is not set and Redis at {redact_url(settings.redis_url)} is not on loopback: "
        f"anyone who can write to that Redis {risk}. Set QUEUE_SIGNING_KEY (see SECURITY.md)."
    )
