"""Sentinel URLs: parse `redis+sentinel://` (and `rediss+sentinel://`) and build a master client.

    redis+sentinel://[user:password@]host:port[,host:port...]/<master name>[/<db>][?options]

The hosts are the sentinels (port 26379 when left out); the client asks them where the master
of `<master name>` is and connects there; after a failover its connection pool asks again
(redis-py's `SentinelConnectionPool`: a new connection re-resolves the master, and a
connection that meets `READONLY` on a demoted master is dropped with a `ConnectionError`), so
`Guard` and the worker's outage handling ride a failover out like any other outage.

One more reply is an outage here: `NOREPLICAS` (the master has fewer good replicas than
`min-replicas-to-write`: for a second after a promotion, or on an old master that came back
after its replicas moved on). Nothing was written (Redis refuses a script before it runs), so
the master connection raises it as `NoReplicasError`, a `ConnectionError`: the caller drops the
connection, retries, and the next connection asks the sentinels again, which takes a client
off a demoted master at once instead of when the sentinels get round to demoting it (~8 s).

`FastScript`'s direct EVALSHA is safe on these pools: it takes connections from the pool
(`connect()` re-resolves the master for a new one) and reads replies through the connection's
own `read_response`, where both conversions happen; a connection that failed is disconnected.

The user and password are the master's. Sentinels get no credentials unless the URL says so
with `sentinel_password=` (and `sentinel_username=` for an ACL user); both are redacted by
`redact_url`. `rediss+sentinel://` uses TLS to the sentinels and to the master, with the same
`ssl_*` options. Other options are redis-py's URL options (`socket_timeout=...`, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.connection import URL_QUERY_ARGUMENT_PARSERS
from redis.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_PORT = 26379

#: Options taken as text (redis-py's URL parser passes them on unchanged).
_TEXT_OPTIONS = frozenset(
    {
        "client_name",
        "ssl_keyfile",
        "ssl_certfile",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_ca_data",
        "ssl_password",
        "ssl_ciphers",
    }
)
#: redis-py URL options that do not apply: the path holds the db, retries are `Guard`'s alone,
#: and `timeout` belongs to a blocking pool.
_REFUSED = frozenset({"db", "retry_on_timeout", "retry_on_error", "timeout"})
#: Connection options that the sentinel clients get too (timeouts, TLS), besides credentials.
_SHARED_PREFIXES = ("socket_", "ssl_")


@dataclass(frozen=True)
class SentinelTarget:
    """A parsed Sentinel URL. Secrets stay out of `repr`."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)


class NoReplicasError(redis.exceptions.ConnectionError):
    """`NOREPLICAS`: the master refused a write for want of good replicas; nothing was written."""


class MasterConnection(SentinelManagedConnection):
    """A connection to the master that turns `NOREPLICAS` into `NoReplicasError` (see above)."""

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith("NOREPLICAS"):
                raise NoReplicasError(str(exc)) from exc
            raise


class MasterSSLConnection(MasterConnection, SentinelManagedSSLConnection):
    """`MasterConnection` over TLS (`rediss+sentinel://`)."""


class Sentinels(Sentinel):
    """redis-py's `Sentinel`, with errors an operator can read.

    `discover_master` asks the sentinels in turn, as redis-py's does, but says which sentinel
    failed how (redis-py puts each client's full repr in the message), and when every sentinel
    refused our credentials it raises `AuthenticationError`, which `Guard` does not retry and
    `translate` reports as a permission error, instead of "no master found" after the retries.
    (`min_other_sentinels` and `force_master_ip`, which `master_client` never sets, are ignored.)
    """

    def __init__(self, sentinels: list[tuple[str, int]], sentinel_kwargs: dict[str, Any]) -> None:
        super().__init__(sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]

    def master(self, service_name: str, **connection: Any) -> redis.Redis:
        """`master_for`, typed: a client whose pool asks these sentinels for every new connection."""
        client: redis.Redis = Sentinel.master_for(self, service_name, **connection)
        return client

    def discover_master(self, service_name: str) -> tuple[str, int]:
        problems: list[str] = []
        refused = 0
        for index, node in enumerate(self.sentinels):
            try:
                masters = node.sentinel_masters()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                refused += isinstance(exc, redis.exceptions.AuthenticationError)
                problems.append(f"{_host_port(node.connection_pool.connection_kwargs)}: {exc}")
                continue
            state = masters.get(service_name) if isinstance(masters, dict) else None
            if state and state["is_master"] and not (state["is_sdown"] or state["is_odown"]):
                self.sentinels[0], self.sentinels[index] = node, self.sentinels[0]  # ask it first next time
                return str(state["ip"]), int(state["port"])
        if refused and refused == len(self.sentinels):
            raise redis.exceptions.AuthenticationError(
                f"every sentinel refused our credentials (sentinel_password=?): {'; '.join(problems)}"
            )
        detail = f" ({'; '.join(problems)})" if problems else ""
        raise MasterNotFoundError(f"no sentinel knows a healthy master named {service_name!r}{detail}")


def is_sentinel_url(url: str) -> bool:
    return url.strip().lower().partition("://")[0] in SCHEMES


def parse(url: str) -> SentinelTarget:
    """Parse a Sentinel URL.

    Raises:
        ValueError: the URL is not a usable Sentinel URL; the message never holds a secret.
    """
    scheme, sep, _ = url.strip().partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError(f"a Sentinel URL starts with {' or '.join(s + '://' for s in SCHEMES)}")
    parts = urlsplit(url.strip())
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    sentinels = tuple(_address(item) for item in hostlist.split(","))
    segments = [unquote(segment) for segment in parts.path.split("/")[1:]]
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if not segments or not segments[0] or len(segments) > 2:
        raise ValueError("the path must be /<master name> or /<master name>/<db>")
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise ValueError(f"the database must be a number, not {segments[1]!r}")
        db = int(segments[1])
    options = _options(parts.query)
    tls = scheme.lower() == "rediss+sentinel"
    if not tls and any(name.startswith("ssl_") for name in options):
        raise ValueError("ssl_* options need rediss+sentinel://")
    return SentinelTarget(
        sentinels=sentinels,
        service=segments[0],
        db=db,
        tls=tls,
        username=username,
        password=password,
        sentinel_username=options.pop("sentinel_username", None),
        sentinel_password=options.pop("sentinel_password", None),
        options=options,
    )


def master_client(url: str, **connection: Any) -> redis.Redis:
    """A client for the master that the URL's sentinels name, re-resolved after a failover.

    `connection` holds what `connect()` gives every client (timeouts, redis-py's retries off,
    no CLIENT SETINFO); the sentinel clients get the same, so that asking a dead sentinel costs
    one connect timeout, not a retry loop. Options in the URL win, as with `redis.Redis.from_url`.

    Raises:
        ValueError: the URL cannot be parsed.
    """
    target = parse(url)
    master = {**connection, **target.options, "db": target.db}
    sentinel = {
        key: value
        for key, value in master.items()
        if key.startswith(_SHARED_PREFIXES) or key in ("retry", "driver_info")
    }
    master["connection_class"] = MasterSSLConnection if target.tls else MasterConnection
    if target.tls:
        sentinel["ssl"] = True
    if target.username is not None:
        master["username"] = target.username
    if target.password is not None:
        master["password"] = target.password
    if target.sentinel_username is not None:
        sentinel["username"] = target.sentinel_username
    if target.sentinel_password is not None:
        sentinel["password"] = target.sentinel_password
    return Sentinels(list(target.sentinels), sentinel_kwargs=sentinel).master(target.service, **master)


def describe(client: redis.Redis) -> str | None:
    """`redis+sentinel://[user@]host:port,.../<master name>/<db>` for a Sentinel client, else None."""
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return None
    tls = issubclass(pool.connection_class, SentinelManagedSSLConnection)
    scheme = SCHEMES[1] if tls else SCHEMES[0]
    kwargs = pool.connection_kwargs
    user = f"{kwargs['username']}@" if kwargs.get("username") else ""
    hosts = ",".join(
        _host_port(node.connection_pool.connection_kwargs) for node in pool.sentinel_manager.sentinels
    )
    return f"{scheme}://{user}{hosts}/{pool.service_name}/{kwargs.get('db', 0)}"


def hosts(url: str) -> list[str] | None:
    """The sentinel host names of a Sentinel URL, or None if it does not parse."""
    try:
        return [host for host, _port in parse(url).sentinels]
    except ValueError:
        return None


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    # As redis-py reads `redis://user:password@`: `:password@` is a password alone, `name@` a user.
    name, colon, secret = userinfo.partition(":")
    return (unquote(name) or None, unquote(secret) if colon else None)


def _address(item: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [v6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad sentinel address {item!r}")
        port_text = rest[1:]
    else:
        host, _, port_text = item.partition(":")
    if not host:
        raise ValueError(f"a sentinel address needs a host: {item!r}")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad sentinel port in {item!r}")
    return host, int(port_text)


def _options(query: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        value = values[-1]
        if name in ("sentinel_password", "sentinel_username") or name in _TEXT_OPTIONS:
            options[name] = value
        elif name in URL_QUERY_ARGUMENT_PARSERS and name not in _REFUSED:
            parser: Callable[[str], Any] = URL_QUERY_ARGUMENT_PARSERS[name]  # type: ignore[assignment]
            try:
                options[name] = parser(value)
            except (TypeError, ValueError):
                raise ValueError(f"bad value for {name!r}") from None
        else:
            raise ValueError(f"unknown option {name!r}")
    return options


def _host_port(kwargs: Mapping[str, Any]) -> str:
    host = str(kwargs.get("host", "localhost"))
    return f"[{host}]:{kwargs.get('port')}" if ":" in host else f"{host}:{kwargs.get('port')}"
