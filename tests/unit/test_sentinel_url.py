"""Sentinel URLs: parsing, the clients built from them, redaction, description, locality. No server."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import MasterNotFoundError, SentinelConnectionPool

from app.config import Settings, redact_url
from app.infrastructure.queue.errors import QueueUnavailableError
from app.infrastructure.redis.connection import connect, describe
from app.infrastructure.redis.locality import is_loopback
from app.infrastructure.redis.script import FastScript
from app.infrastructure.redis.sentinel import (
    MasterConnection,
    MasterSSLConnection,
    NoReplicasError,
    SentinelTarget,
    is_sentinel_url,
    parse,
)

URL = "redis+sentinel://app:hunter2@10.0.0.1:26379,10.0.0.2:26380,sentinel-3/orders/2"


def test_a_full_url_parses():
    target = parse(URL)
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("sentinel-3", 26379)),
        service="orders",
        db=2,
        username="app",
        password="hunter2",
    )
    assert "hunter2" not in repr(target)


@pytest.mark.parametrize(
    ("url", "sentinels", "service", "db"),
    [
        ("redis+sentinel://127.0.0.1:26379/mymaster", (("127.0.0.1", 26379),), "mymaster", 0),
        ("redis+sentinel://h/mymaster/", (("h", 26379),), "mymaster", 0),
        ("REDIS+SENTINEL://h:1/m/15", (("h", 1),), "m", 15),
        ("redis+sentinel://[::1]:26379,[fe80::1]/m/0", (("::1", 26379), ("fe80::1", 26379)), "m", 0),
        ("redis+sentinel://h/my%20master/1", (("h", 26379),), "my master", 1),
    ],
)
def test_hosts_ports_master_name_and_db(url, sentinels, service, db):
    target = parse(url)
    assert (target.sentinels, target.service, target.db) == (sentinels, service, db)


def test_credentials_as_redis_py_reads_them():
    assert (parse("redis+sentinel://:pw@h/m").username, parse("redis+sentinel://:pw@h/m").password) == (
        None,
        "pw",
    )
    assert parse("redis+sentinel://user@h/m").username == "user"
    assert parse("redis+sentinel://u:p%40ss@h/m").password == "p@ss"


def test_sentinel_credentials_and_options_from_the_query():
    target = parse("redis+sentinel://h/m?sentinel_password=spw&sentinel_username=mon&socket_timeout=0.5")
    assert (target.sentinel_username, target.sentinel_password) == ("mon", "spw")
    assert target.options == {"socket_timeout": 0.5}
    assert target.password is None


def test_tls():
    target = parse("rediss+sentinel://h/m?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required")
    assert target.tls and target.options == {"ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "required"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://h/m", "starts with"),
        ("redis+sentinel://h", "path must be"),
        ("redis+sentinel://h/", "path must be"),
        ("redis+sentinel://h/m/0/extra", "path must be"),
        ("redis+sentinel://h/m/x", "must be a number"),
        ("redis+sentinel://h:0/m", "bad sentinel port"),
        ("redis+sentinel://h:99999/m", "bad sentinel port"),
        ("redis+sentinel://h:port/m", "bad sentinel port"),
        ("redis+sentinel://h1,,h2/m", "needs a host"),
        ("redis+sentinel://[::1/m", "Invalid IPv6 URL"),
        ("redis+sentinel://[::1]x/m", "bad sentinel address"),
        ("redis+sentinel://h/m?nonsense=1", "unknown option"),
        ("redis+sentinel://h/m?db=3", "unknown option"),
        ("redis+sentinel://h/m?retry_on_timeout=yes", "unknown option"),
        ("redis+sentinel://h/m?socket_timeout=soon", "bad value"),
        ("redis+sentinel://h/m?ssl_ca_certs=/ca.pem", "need rediss\\+sentinel"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, reason):
    with pytest.raises(ValueError, match=reason):
        parse(url)


def test_a_bad_url_is_our_error_with_the_url_redacted():
    with pytest.raises(QueueUnavailableError) as caught:
        connect(Settings(redis_url="redis+sentinel://app:hunter2@h1:26379,h2:1/m/x?sentinel_password=s3"))
    message = str(caught.value)
    assert "hunter2" not in message and "s3" not in message
    assert "redis+sentinel://app:***@h1:26379,h2:1/m/x?sentinel_password=***" in message
    assert "the database must be a number" in message


def test_the_settings_accept_the_scheme():
    settings = Settings.from_env({"REDIS_URL": URL})
    assert settings.redis_url == URL
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (URL, "redis+sentinel://app:***@10.0.0.1:26379,10.0.0.2:26380,sentinel-3/orders/2"),
        ("redis+sentinel://:pw@h1,h2/m", "redis+sentinel://:***@h1,h2/m"),
        ("redis+sentinel://barepw@[::1]:1,h/m", "redis+sentinel://***@[::1]:1,h/m"),
        ("redis+sentinel://h1:1,h2:2/m/0", "redis+sentinel://h1:1,h2:2/m/0"),
        (
            "rediss+sentinel://u:p@h/m?sentinel_password=spw&ssl_password=kpw&ssl_ca_certs=/ca.pem",
            "rediss+sentinel://u:***@h/m?sentinel_password=***&ssl_password=***&ssl_ca_certs=/ca.pem",
        ),
        ("redis+sentinel://h:99999/m", "redis+sentinel://h:99999/m"),  # redacted even if unusable
    ],
)
def test_redact_url_hides_sentinel_secrets_and_keeps_the_hosts(url, expected):
    assert redact_url(url) == expected


def test_the_master_client_gets_the_password_and_the_sentinels_do_not():
    client = connect(
        Settings(redis_url=URL, redis_socket_timeout=3.0, redis_connect_timeout=1.5), socket_timeout=4.0
    )
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "orders"
    assert pool.connection_class is MasterConnection
    master = pool.connection_kwargs
    assert (master["username"], master["password"], master["db"]) == ("app", "hunter2", 2)
    assert (master["socket_timeout"], master["socket_connect_timeout"]) == (4.0, 1.5)
    assert master["retry"].get_retries() == 0  # Guard alone retries
    nodes = [node.connection_pool.connection_kwargs for node in pool.sentinel_manager.sentinels]
    assert [(kw["host"], kw["port"]) for kw in nodes] == [
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
        ("sentinel-3", 26379),
    ]
    for kwargs in nodes:
        assert kwargs["password"] is None and kwargs["username"] is None
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (4.0, 1.5)
        assert kwargs["retry"].get_retries() == 0


def test_sentinel_credentials_go_to_the_sentinels_only():
    client = connect(Settings(redis_url="redis+sentinel://h/m?sentinel_password=spw&sentinel_username=mon"))
    pool = client.connection_pool
    assert pool.connection_kwargs.get("password") is None
    (node,) = pool.sentinel_manager.sentinels
    assert (
        node.connection_pool.connection_kwargs["username"],
        node.connection_pool.connection_kwargs["password"],
    ) == (
        "mon",
        "spw",
    )


def test_tls_reaches_the_master_and_the_sentinels():
    client = connect(Settings(redis_url="rediss+sentinel://h/m?ssl_cert_reqs=none"))
    pool = client.connection_pool
    assert pool.connection_class is MasterSSLConnection
    assert pool.connection_kwargs["ssl_cert_reqs"] == "none"
    (node,) = pool.sentinel_manager.sentinels
    assert node.connection_pool.connection_class.__name__ == "SSLConnection"
    assert node.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"


def test_describe_names_the_sentinels_and_the_master_without_the_password():
    assert describe(connect(Settings(redis_url=URL))) == (
        "redis+sentinel://app@10.0.0.1:26379,10.0.0.2:26380,sentinel-3:26379/orders/2"
    )
    assert describe(connect(Settings(redis_url="rediss+sentinel://:pw@[::1]/m"))) == (
        "rediss+sentinel://[::1]:26379/m/0"
    )


def test_fast_script_keeps_its_direct_path_on_a_sentinel_pool():
    # Safe: a new connection re-resolves the master, replies go through MasterConnection.
    assert FastScript(connect(Settings(redis_url=URL)), "return 1")._direct


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("redis+sentinel://127.0.0.1:26379,localhost:26380,[::1]:26381/m/0", True),
        ("rediss+sentinel://u:pw@127.0.0.2/m", True),
        ("redis+sentinel://127.0.0.1:26379,10.0.0.2:26379/m/0", False),
        ("redis+sentinel://sentinel.internal/m", False),
        ("redis+sentinel://127.0.0.1:99999/m", False),
        ("redis+sentinel://127.0.0.1", False),
    ],
)
def test_a_sentinel_url_is_loopback_only_if_every_sentinel_is(url, loopback):
    assert is_sentinel_url(url)
    assert is_loopback(url) is loopback


def test_failover_errors_are_outages_for_guard_and_the_worker():
    # Guard retries ConnectionError (and ReadOnlyError); the worker's loop waits out ConnectionError.
    # redis-py raises MasterNotFoundError while no master is known, and turns READONLY from a
    # demoted master into a ConnectionError; NOREPLICAS is turned into one here.
    for error in (MasterNotFoundError, NoReplicasError):
        assert issubclass(error, redis.exceptions.ConnectionError)
