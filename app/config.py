"""One frozen settings object, read from the environment by the entrypoints.

Nothing here runs at import time: callers build `Settings.from_env()` once and pass it down.
Every bad value is rejected with a message that names its variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.keys import QUEUE_NAME_RE

T = TypeVar("T")


class ConfigError(QueueError):
    """Raised when a setting (an environment variable) holds a value we cannot use."""

    def __init__(self, variable: str, value: str, reason: str) -> None:
        self.variable = variable
        self.value = value
        super().__init__(f"{variable}={value!r}: {reason}")


PRIORITIES = ("high", "default", "low")
_SECRET_FIELDS = frozenset({"signing_key", "old_signing_keys"})


def redact_url(url: str) -> str:
    """Return `url` with its secrets replaced by `***`, for messages and logs.

    `redis://user:pw@host` keeps the user name; `redis://pw@host` (a bare secret) hides it all;
    a `password=` query parameter is hidden too.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        host = parts.hostname or ""
        if port is not None:
            host = f"{host}:{port}"
        netloc = f"{parts.username or ''}:***@{host}" if parts.password is not None else f"***@{host}"
    query = "&".join(
        f"{name}=***" if name.lower() in ("password", "pass", "auth") else f"{name}{sep}{value}"
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if parts.scheme == "unix" and not netloc:
        redacted = redacted.replace("unix:", "unix://", 1)
    return redacted


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults a service can run on.

    Build it with `Settings.from_env()`; tests build it directly with the values they need.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Queue names in priority order: high, default, low.
    queue_names: tuple[str, str, str] = ("high", "default", "low")
    job_timeout: int = 180
    result_ttl: int = 3600
    failure_ttl: int = 7 * 24 * 3600
    ttl: int | None = None
    max_payload_bytes: int = 512 * 1024
    retry_max: int = 3
    retry_base: float = 10.0
    retry_factor: float = 6.0
    retry_cap: float = 300.0
    retry_jitter: float = 0.1
    serializer: str = "pickle"
    signing_key: bytes | None = field(default=None, repr=False)
    old_signing_keys: tuple[bytes, ...] = field(default=(), repr=False)
    extra_jobs: tuple[tuple[str, str], ...] = ()
    redis_retry_seconds: float = 1.5
    redis_socket_timeout: float = 5.0
    redis_connect_timeout: float = 2.0
    worker_mode: str = "fork"
    heartbeat_interval: float = 5.0
    maintenance_interval: float = 15.0
    idle_poll: float = 1.0
    documents_dir: Path = Path("data/documents")
    ingested_dir: Path = Path("data/ingested")
    log_level: str = "INFO"
    log_format: str = "text"

    def __post_init__(self) -> None:
        _check_queue_names(self.queue_names, "QUEUE_NAMES")
        if self.serializer not in ("pickle", "json"):
            raise ConfigError("QUEUE_SERIALIZER", self.serializer, "must be 'pickle' or 'json'")
        if self.worker_mode not in ("fork", "inline"):
            raise ConfigError("WORKER_MODE", self.worker_mode, "must be 'fork' or 'inline'")
        if self.log_format not in ("text", "json"):
            raise ConfigError("LOG_FORMAT", self.log_format, "must be 'text' or 'json'")
        if self.signing_key is not None and len(self.signing_key) < 16:
            raise ConfigError("QUEUE_SIGNING_KEY", "<redacted>", "must be at least 16 bytes long")

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_FIELDS:
                value = "<redacted>" if value else value
            elif f.name == "redis_url":
                value = redact_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    def to_env(self) -> dict[str, str]:
        """The environment variables that `from_env` reads back into these settings.

        For starting worker processes with the same configuration; it holds secrets, never log it.
        """
        return {
            "REDIS_URL": self.redis_url,
            "QUEUE_NAMES": ",".join(self.queue_names),
            "QUEUE_JOB_TIMEOUT": str(self.job_timeout),
            "QUEUE_RESULT_TTL": str(self.result_ttl),
            "QUEUE_FAILURE_TTL": str(self.failure_ttl),
            "QUEUE_TTL": str(self.ttl or ""),
            "QUEUE_MAX_PAYLOAD_BYTES": str(self.max_payload_bytes),
            "QUEUE_RETRY_MAX": str(self.retry_max),
            "QUEUE_RETRY_BASE_SECONDS": repr(self.retry_base),
            "QUEUE_RETRY_FACTOR": repr(self.retry_factor),
            "QUEUE_RETRY_CAP_SECONDS": repr(self.retry_cap),
            "QUEUE_RETRY_JITTER": repr(self.retry_jitter),
            "QUEUE_SERIALIZER": self.serializer,
            "QUEUE_SIGNING_KEY": self.signing_key.decode() if self.signing_key else "",
            "QUEUE_SIGNING_KEYS_OLD": ",".join(key.decode() for key in self.old_signing_keys),
            "QUEUE_EXTRA_JOBS": ",".join(f"{name}={path}" for name, path in self.extra_jobs),
            "REDIS_RETRY_SECONDS": repr(self.redis_retry_seconds),
            "REDIS_SOCKET_TIMEOUT": repr(self.redis_socket_timeout),
            "REDIS_CONNECT_TIMEOUT": repr(self.redis_connect_timeout),
            "WORKER_MODE": self.worker_mode,
            "WORKER_HEARTBEAT_INTERVAL": repr(self.heartbeat_interval),
            "WORKER_MAINTENANCE_INTERVAL": repr(self.maintenance_interval),
            "WORKER_IDLE_POLL": repr(self.idle_poll),
            "DOCUMENTS_DIR": str(self.documents_dir),
            "INGESTED_DIR": str(self.ingested_dir),
            "LOG_LEVEL": self.log_level,
            "LOG_FORMAT": self.log_format,
        }

    def queue_for(self, priority: str) -> str:
        """The queue name that carries jobs of `priority` ('high', 'default' or 'low')."""
        return self.queue_names[PRIORITIES.index(priority)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from `environ` (default: `os.environ`).

        Raises:
            ConfigError: a variable holds a value we cannot use; the message names it.
        """
        env = os.environ if environ is None else environ
        r = _Reader(env)
        defaults = cls()
        return cls(
            redis_url=r.text("REDIS_URL", defaults.redis_url),
            queue_names=r.queue_names("QUEUE_NAMES", defaults.queue_names),
            job_timeout=r.number("QUEUE_JOB_TIMEOUT", defaults.job_timeout, int, minimum=1),
            result_ttl=r.number("QUEUE_RESULT_TTL", defaults.result_ttl, int, minimum=1),
            failure_ttl=r.number("QUEUE_FAILURE_TTL", defaults.failure_ttl, int, minimum=1),
            ttl=r.optional_int("QUEUE_TTL", minimum=1),
            max_payload_bytes=r.number(
                "QUEUE_MAX_PAYLOAD_BYTES", defaults.max_payload_bytes, int, minimum=64
            ),
            retry_max=r.number("QUEUE_RETRY_MAX", defaults.retry_max, int, minimum=0),
            retry_base=r.number("QUEUE_RETRY_BASE_SECONDS", defaults.retry_base, float, minimum=0),
            retry_factor=r.number("QUEUE_RETRY_FACTOR", defaults.retry_factor, float, minimum=1),
            retry_cap=r.number("QUEUE_RETRY_CAP_SECONDS", defaults.retry_cap, float, minimum=0),
            retry_jitter=r.number("QUEUE_RETRY_JITTER", defaults.retry_jitter, float, minimum=0, maximum=1),
            serializer=r.text("QUEUE_SERIALIZER", defaults.serializer).lower(),
            signing_key=r.secret("QUEUE_SIGNING_KEY"),
            old_signing_keys=r.secrets("QUEUE_SIGNING_KEYS_OLD"),
            extra_jobs=r.job_map("QUEUE_EXTRA_JOBS"),
            redis_retry_seconds=r.number(
                "REDIS_RETRY_SECONDS", defaults.redis_retry_seconds, float, minimum=0
            ),
            redis_socket_timeout=r.number(
                "REDIS_SOCKET_TIMEOUT", defaults.redis_socket_timeout, float, minimum=0.01
            ),
            redis_connect_timeout=r.number(
                "REDIS_CONNECT_TIMEOUT", defaults.redis_connect_timeout, float, minimum=0.01
            ),
            worker_mode=r.text("WORKER_MODE", defaults.worker_mode).lower(),
            heartbeat_interval=r.number(
                "WORKER_HEARTBEAT_INTERVAL", defaults.heartbeat_interval, float, minimum=0.1
            ),
            maintenance_interval=r.number(
                "WORKER_MAINTENANCE_INTERVAL", defaults.maintenance_interval, float, minimum=0.1
            ),
            idle_poll=r.number("WORKER_IDLE_POLL", defaults.idle_poll, float, minimum=0.01, maximum=60),
            documents_dir=Path(r.text("DOCUMENTS_DIR", str(defaults.documents_dir))),
            ingested_dir=Path(r.text("INGESTED_DIR", str(defaults.ingested_dir))),
            log_level=r.choice("LOG_LEVEL", defaults.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")),
            log_format=r.text("LOG_FORMAT", defaults.log_format).lower(),
        )


def _check_queue_names(names: tuple[str, ...], variable: str) -> None:
    if len(names) != 3 or len(set(names)) != 3:
        raise ConfigError(variable, ",".join(names), "needs three distinct names: high, default, low")
    for name in names:
        if not QUEUE_NAME_RE.fullmatch(name):
            raise ConfigError(variable, name, f"queue names must match {QUEUE_NAME_RE.pattern}")


class _Reader:
    """Parses one environment variable at a time, naming it in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = (self._raw(name) or default).upper()
        if value not in allowed:
            raise ConfigError(name, value, f"must be one of {', '.join(allowed)}")
        return value

    def number(
        self,
        name: str,
        default: T,
        kind: Callable[[str], T],
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(name, raw, f"must be a {getattr(kind, '__name__', 'number')}") from None
        if minimum is not None and value < minimum:  # type: ignore[operator]
            raise ConfigError(name, raw, f"must be >= {minimum}")
        if maximum is not None and value > maximum:  # type: ignore[operator]
            raise ConfigError(name, raw, f"must be <= {maximum}")
        return value

    def optional_int(self, name: str, minimum: int) -> int | None:
        if self._raw(name) is None:
            return None
        return self.number(name, 0, int, minimum=minimum)

    def queue_names(self, name: str, default: tuple[str, str, str]) -> tuple[str, str, str]:
        raw = self._raw(name)
        if raw is None:
            return default
        names = tuple(part.strip() for part in raw.split(","))
        _check_queue_names(names, name)
        return names  # type: ignore[return-value]

    def secret(self, name: str) -> bytes | None:
        raw = self._raw(name)
        return raw.encode() if raw is not None else None

    def secrets(self, name: str) -> tuple[bytes, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        return tuple(part.strip().encode() for part in raw.split(",") if part.strip())

    def job_map(self, name: str) -> tuple[tuple[str, str], ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        pairs = []
        for item in raw.split(","):
            short, sep, path = item.strip().partition("=")
            if not sep or not short.strip() or not path.strip():
                raise ConfigError(name, item, "entries must look like name=package.module.function")
            pairs.append((short.strip(), path.strip()))
        return tuple(pairs)
