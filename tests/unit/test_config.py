import pytest

from app.config import PROJECT_ROOT, ConfigError, Settings, redact_url
from app.infrastructure.queue.errors import QueueError


def test_defaults_when_environment_is_empty():
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.queue_names == ("high", "default", "low")
    assert settings.max_payload_bytes == 512 * 1024
    assert settings.documents_dir == PROJECT_ROOT / "data" / "documents"


def test_reads_every_variable_back_from_to_env():
    settings = Settings.from_env(
        {
            "REDIS_URL": "rediss://worker:pw@redis.internal:6380/3",
            "QUEUE_NAMES": "urgent,normal,bulk",
            "QUEUE_JOB_TIMEOUT": "30",
            "QUEUE_TTL": "600",
            "QUEUE_SERIALIZER": "JSON",
            "QUEUE_SIGNING_KEY": "k" * 32,
            "QUEUE_SIGNING_KEYS_OLD": "o" * 32 + "," + "p" * 32,
            "QUEUE_EXTRA_JOBS": "x=pkg.mod.fn",
            "WORKER_MODE": "pool",
            "WORKER_MAX_JOBS_PER_HORSE": "50",
            "WORKER_MAX_HORSE_RSS_MB": "0",
        }
    )
    assert (settings.worker_mode, settings.max_jobs_per_horse, settings.max_horse_rss_mb) == ("pool", 50, 0)
    assert settings.queue_for("high") == "urgent"
    assert settings.serializer == "json"
    assert settings.ttl == 600
    assert settings.old_signing_keys == (b"o" * 32, b"p" * 32)
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("QUEUE_JOB_TIMEOUT", "soon", "must be a int"),
        ("QUEUE_JOB_TIMEOUT", "0", ">= 1"),
        ("QUEUE_NAMES", "a,b", "three distinct names"),
        ("QUEUE_NAMES", "a,b,a:intermediate", "queue names must match"),
        ("QUEUE_SERIALIZER", "yaml", "'pickle' or 'json'"),
        ("WORKER_MODE", "threads", "'fork', 'pool' or 'inline'"),
        ("WORKER_MAX_JOBS_PER_HORSE", "0", ">= 1"),
        ("WORKER_MAX_HORSE_RSS_MB", "-1", ">= 0"),
        ("LOG_LEVEL", "LOUD", "must be one of"),
        ("QUEUE_RETRY_JITTER", "2", "<= 1"),
        ("QUEUE_EXTRA_JOBS", "nameonly", "name=package.module.function"),
        ("QUEUE_SIGNING_KEY", "short", "at least 16 bytes"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(variable, value, fragment):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, QueueError)


def test_secret_key_never_appears_in_the_error():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"QUEUE_SIGNING_KEY": "tiny-secret"})
    assert "tiny-secret" not in str(caught.value)


def test_repr_redacts_password_and_keys():
    settings = Settings.from_env(
        {"REDIS_URL": "redis://app:hunter2@h:6379/0", "QUEUE_SIGNING_KEY": "s3cret" * 4}
    )
    text = repr(settings)
    assert "hunter2" not in text
    assert "s3cret" not in text
    assert "redis://app:***@h:6379/0" in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@host:1/2", "redis://:***@host:1/2"),
        ("redis://user:pw@host/0", "redis://user:***@host/0"),
        ("redis://barepw@host:1", "redis://***@host:1"),
        ("rediss://u:p@h:6380/0?ssl_cert_reqs=none", "rediss://u:***@h:6380/0?ssl_cert_reqs=none"),
        ("unix:///tmp/r.sock?db=2&password=pw", "unix:///tmp/r.sock?db=2&password=***"),
        ("redis://h:1/0?password=pw", "redis://h:1/0?password=***"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_every_setting_has_one_environment_variable():
    from dataclasses import fields

    from app.config import _VARIABLES

    assert [f.name for f in fields(Settings)] == list(_VARIABLES)
    names = [var.name for var in _VARIABLES.values()]
    assert len(names) == len(set(names))


def test_relative_folders_start_at_the_project_not_the_current_directory(tmp_path, monkeypatch):
    """Issue 18 item 4: a worker started elsewhere (systemd, a container) still finds the documents."""
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({"DOCUMENTS_DIR": "data/documents", "INGESTED_DIR": str(tmp_path / "out")})
    assert settings.documents_dir == PROJECT_ROOT / "data" / "documents"
    assert settings.documents_dir.is_dir() and settings.ingested_dir == tmp_path / "out"
    assert Settings.from_env({}).ingested_dir.is_absolute()
