"""One frozen settings object, read from the environment by the entrypoints.

Nothing here runs at import time: callers build `Settings.from_env()` once and pass it down.
Every bad value is rejected with a message that names its variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from app.infrastructure.queue import limits
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
#: The project's folder (the one holding `app/`): relative DOCUMENTS_DIR / INGESTED_DIR start here,
#: not in the current directory, so a worker started elsewhere (systemd, a container) finds them.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKER_MODES = ("fork", "pool", "inline")
_SECRET_FIELDS = frozenset({"signing_key", "old_signing_keys"})


def redact_url(url: str) -> str:
    """Return `url` with its secrets replaced by `***`, for messages and logs.

    `redis://user:pw@host` keeps the user name; `redis://pw@host` (a bare secret) hides it all;
    a `password=` query parameter (or `sentinel_password=`, `ssl_password=`) is hidden too.
    A Sentinel URL (`redis+sentinel://user:pw@host:port,host:port/master/0`) keeps its hosts.
    """
    try:
        parts = urlsplit(url)
        # Several host:port pairs are not one port: Sentinel URLs keep their host list verbatim.
        several = parts.scheme.lower().endswith("+sentinel")
        port = None if several else parts.port
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        host = netloc.rpartition("@")[2] if several else parts.hostname or ""
        if port is not None:
            host = f"{host}:{port}"
        netloc = f"{parts.username or ''}:***@{host}" if parts.password is not None else f"***@{host}"
    query = "&".join(
        f"{name}=***" if _is_secret_option(name) else f"{name}{sep}{value}"
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if parts.scheme == "unix" and not netloc:
        redacted = redacted.replace("unix:", "unix://", 1)
    return redacted


def _is_secret_option(name: str) -> bool:
    name = name.lower()
    return name in ("pass", "auth") or name.endswith("password")


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
    max_result_bytes: int = 512 * 1024
    max_failed: int = 10_000  # per queue's failed registry; 0: no bound
    retry_max: int = 3
    retry_base: float = 10.0
    retry_factor: float = 6.0
    retry_cap: float = 300.0
    retry_jitter: float = 0.1
    serializer: str = "pickle"
    signing_key: bytes | None = field(default=None, repr=False)
    old_signing_keys: tuple[bytes, ...] = field(default=(), repr=False)
    extra_jobs: tuple[tuple[str, str], ...] = ()
    limits: str = ""  # QUEUE_LIMITS: "name=concurrency:2;rate:10/1s,..." (app/infrastructure/queue/limits.py)
    schedules_module: str = "app.worker.schedules"
    unknown_job_grace: float = 3600.0  # a job no worker knows is handed back this long, then failed
    redis_retry_seconds: float = 1.5
    wait_replicas: int = 0  # QUEUE_WAIT_REPLICAS: replicas that must hold an enqueue before it returns
    wait_timeout_ms: int = 1000
    redis_socket_timeout: float = 5.0
    redis_connect_timeout: float = 2.0
    worker_mode: str = "fork"
    max_jobs_per_horse: int = 1000
    max_horse_rss_mb: int = 512  # 0: no bound
    heartbeat_interval: float = 5.0
    maintenance_interval: float = 15.0
    idle_poll: float = 1.0
    documents_dir: Path = PROJECT_ROOT / "data" / "documents"
    ingested_dir: Path = PROJECT_ROOT / "data" / "ingested"
    log_level: str = "INFO"
    log_format: str = "text"

    def __post_init__(self) -> None:
        _check_queue_names(self.queue_names, "QUEUE_NAMES")
        if self.serializer not in ("pickle", "json"):
            raise ConfigError("QUEUE_SERIALIZER", self.serializer, "must be 'pickle' or 'json'")
        if self.worker_mode not in WORKER_MODES:
            raise ConfigError("WORKER_MODE", self.worker_mode, "must be 'fork', 'pool' or 'inline'")
        if self.log_format not in ("text", "json"):
            raise ConfigError("LOG_FORMAT", self.log_format, "must be 'text' or 'json'")
        try:
            limits.parse(self.limits)
        except limits.LimitError as exc:
            raise ConfigError("QUEUE_LIMITS", self.limits, str(exc)) from None
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
        return {var.name: var.write(getattr(self, field)) for field, var in _VARIABLES.items()}

    def queue_for(self, priority: str) -> str:
        """The queue name that carries jobs of `priority` ('high', 'default' or 'low')."""
        return self.queue_names[PRIORITIES.index(priority)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from `environ` (default: `os.environ`).

        Raises:
            ConfigError: a variable holds a value we cannot use; the message names it.
        """
        reader = _Reader(os.environ if environ is None else environ)
        defaults = cls()
        values = {
            field: var.read(reader, var.name, getattr(defaults, field)) for field, var in _VARIABLES.items()
        }
        return cls(**values)


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

    def lower(self, name: str, default: str) -> str:
        return self.text(name, default).lower()

    def path(self, name: str, default: Path) -> Path:
        """A folder; a relative one is taken from the project's folder, never the current one."""
        return PROJECT_ROOT / Path(self.text(name, str(default))).expanduser()

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

    def optional_int(self, name: str, default: int | None, minimum: int) -> int | None:
        if self._raw(name) is None:
            return default
        return self.number(name, 0, int, minimum=minimum)

    def queue_names(self, name: str, default: tuple[str, str, str]) -> tuple[str, str, str]:
        raw = self._raw(name)
        if raw is None:
            return default
        names = tuple(part.strip() for part in raw.split(","))
        _check_queue_names(names, name)
        return names  # type: ignore[return-value]

    def secret(self, name: str, default: bytes | None) -> bytes | None:
        raw = self._raw(name)
        return raw.encode() if raw is not None else default

    def secrets(self, name: str, default: tuple[bytes, ...]) -> tuple[bytes, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        return tuple(part.strip().encode() for part in raw.split(",") if part.strip())

    def job_map(self, name: str, default: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        raw = self._raw(name)
        if raw is None:
            return default
        pairs = []
        for item in raw.split(","):
            short, sep, path = item.strip().partition("=")
            if not sep or not short.strip() or not path.strip():
                raise ConfigError(name, item, "entries must look like name=package.module.function")
            pairs.append((short.strip(), path.strip()))
        return tuple(pairs)


@dataclass(frozen=True)
class _Var:
    """One environment variable: its name, how it is read (with the field's default), how written."""

    name: str
    read: Callable[[_Reader, str, Any], Any]
    write: Callable[[Any], str] = str


def _num(kind: Callable[[str], Any], minimum: float | None = None, maximum: float | None = None) -> Any:
    return lambda r, name, default: r.number(name, default, kind, minimum, maximum)


def _choice(*allowed: str) -> Any:
    return lambda r, name, default: r.choice(name, default, allowed)


_FLOAT = repr  # floats are written so that they read back exactly
_optional = _Var(
    "", lambda r, name, default: r.optional_int(name, default, minimum=1), lambda v: str(v or "")
)

#: Every setting: the Settings field, and its environment variable. The one list of them.
_VARIABLES: Mapping[str, _Var] = {
    "redis_url": _Var("REDIS_URL", _Reader.text),
    "queue_names": _Var("QUEUE_NAMES", _Reader.queue_names, ",".join),
    "job_timeout": _Var("QUEUE_JOB_TIMEOUT", _num(int, minimum=1)),
    "result_ttl": _Var("QUEUE_RESULT_TTL", _num(int, minimum=1)),
    "failure_ttl": _Var("QUEUE_FAILURE_TTL", _num(int, minimum=1)),
    "ttl": replace(_optional, name="QUEUE_TTL"),
    "max_payload_bytes": _Var("QUEUE_MAX_PAYLOAD_BYTES", _num(int, minimum=64)),
    "max_result_bytes": _Var("QUEUE_MAX_RESULT_BYTES", _num(int, minimum=64)),
    "max_failed": _Var("QUEUE_MAX_FAILED", _num(int, minimum=0)),
    "retry_max": _Var("QUEUE_RETRY_MAX", _num(int, minimum=0)),
    "retry_base": _Var("QUEUE_RETRY_BASE_SECONDS", _num(float, minimum=0), _FLOAT),
    "retry_factor": _Var("QUEUE_RETRY_FACTOR", _num(float, minimum=1), _FLOAT),
    "retry_cap": _Var("QUEUE_RETRY_CAP_SECONDS", _num(float, minimum=0), _FLOAT),
    "retry_jitter": _Var("QUEUE_RETRY_JITTER", _num(float, minimum=0, maximum=1), _FLOAT),
    "serializer": _Var("QUEUE_SERIALIZER", _Reader.lower),
    "signing_key": _Var("QUEUE_SIGNING_KEY", _Reader.secret, lambda v: v.decode() if v else ""),
    "old_signing_keys": _Var(
        "QUEUE_SIGNING_KEYS_OLD", _Reader.secrets, lambda v: ",".join(k.decode() for k in v)
    ),
    "extra_jobs": _Var("QUEUE_EXTRA_JOBS", _Reader.job_map, lambda v: ",".join(f"{n}={p}" for n, p in v)),
    "limits": _Var("QUEUE_LIMITS", _Reader.text),
    "schedules_module": _Var("QUEUE_SCHEDULES_MODULE", _Reader.text),
    "unknown_job_grace": _Var("QUEUE_UNKNOWN_JOB_GRACE", _num(float, minimum=0), _FLOAT),
    "redis_retry_seconds": _Var("REDIS_RETRY_SECONDS", _num(float, minimum=0), _FLOAT),
    "wait_replicas": _Var("QUEUE_WAIT_REPLICAS", _num(int, minimum=0)),
    "wait_timeout_ms": _Var("QUEUE_WAIT_TIMEOUT_MS", _num(int, minimum=1)),
    "redis_socket_timeout": _Var("REDIS_SOCKET_TIMEOUT", _num(float, minimum=0.01), _FLOAT),
    "redis_connect_timeout": _Var("REDIS_CONNECT_TIMEOUT", _num(float, minimum=0.01), _FLOAT),
    "worker_mode": _Var("WORKER_MODE", _Reader.lower),
    "max_jobs_per_horse": _Var("WORKER_MAX_JOBS_PER_HORSE", _num(int, minimum=1)),
    "max_horse_rss_mb": _Var("WORKER_MAX_HORSE_RSS_MB", _num(int, minimum=0)),
    "heartbeat_interval": _Var("WORKER_HEARTBEAT_INTERVAL", _num(float, minimum=0.1), _FLOAT),
    "maintenance_interval": _Var("WORKER_MAINTENANCE_INTERVAL", _num(float, minimum=0.1), _FLOAT),
    "idle_poll": _Var("WORKER_IDLE_POLL", _num(float, minimum=0.01, maximum=60), _FLOAT),
    "documents_dir": _Var("DOCUMENTS_DIR", _Reader.path),
    "ingested_dir": _Var("INGESTED_DIR", _Reader.path),
    "log_level": _Var("LOG_LEVEL", _choice("DEBUG", "INFO", "WARNING", "ERROR")),
    "log_format": _Var("LOG_FORMAT", _Reader.lower),
}
