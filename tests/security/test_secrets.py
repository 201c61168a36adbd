"""The Redis password and the signing key never reach a log line, CLI output, error message or repr."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.serialization import make_serializer
from app.infrastructure.redis.connection import Guard, connect, describe
from chaos.servers import PrivateRedis
from tests.e2e.conftest import TASKQ, cli_env
from tests.support.processes import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Pa55-never-print-me"
KEY = "signing-key-never-print-me"
OLD_KEY = "old-signing-key-never-print-me"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateRedis]:
    with PrivateRedis(acl=f"user default off\nuser app on >{PASSWORD} ~* &* +@all\n") as private:
        yield private


@pytest.fixture
def secret_settings(server, settings):
    return replace(
        settings,
        redis_url=server.url_for("app", PASSWORD),
        signing_key=KEY.encode(),
        old_signing_keys=(OLD_KEY.encode(),),
        log_level="DEBUG",
    )


def assert_clean(text: str) -> None:
    for secret in (PASSWORD, KEY, OLD_KEY):
        assert secret not in text, f"{secret!r} leaked into:\n{text}"


def taskq(settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TASKQ), *args],
        cwd=ROOT,
        env=cli_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_worker_logs_at_debug_never_carry_a_secret(secret_settings, log_format):
    settings = replace(secret_settings, log_format=log_format)
    queue = RQQueue(connect(settings), settings)
    ok = queue.enqueue("add", {"a": 1, "b": 1})
    bad = queue.enqueue("fail_always", {"message": "boom"})
    worker = WorkerProcess(settings, "--burst").start(wait_ready=False)
    assert worker.wait(timeout=30) == 0, worker.output
    assert queue.get(ok).result == 2 and queue.get(bad).status.value == "failed"
    assert "job failed" in worker.output and "boom" in worker.output
    assert_clean(worker.output)


def test_cli_output_and_errors_never_carry_a_secret(secret_settings):
    queue = RQQueue(connect(secret_settings), secret_settings)
    job_id = queue.enqueue("fail_always", {"message": "boom"})
    WorkerProcess(secret_settings, "--burst").start(wait_ready=False).wait(timeout=30)
    outputs = [
        taskq(secret_settings, "info"),
        taskq(secret_settings, "status", job_id, "--json"),
        taskq(secret_settings, "failed", "show", job_id),
        taskq(secret_settings, "jobs"),
    ]
    assert [run.returncode for run in outputs] == [0, 3, 0, 0]  # status of a failed job: exit 3
    bad_password = replace(
        secret_settings, redis_url=secret_settings.redis_url.replace(PASSWORD, "x" + PASSWORD)
    )
    wrong = taskq(bad_password, "info")
    assert wrong.returncode == 1 and "refused access" in wrong.stderr
    bad_port = taskq(secret_settings, "info", REDIS_URL=f"redis://app:{PASSWORD}@127.0.0.1:99999/0")
    assert bad_port.returncode != 0
    for run in [*outputs, wrong, bad_port]:
        assert "Traceback" not in run.stderr
        assert_clean(run.stdout + run.stderr)
        assert_clean(run.stdout.replace("x" + PASSWORD, ""))


def test_reprs_and_errors_never_carry_a_secret(secret_settings, server):
    client = connect(secret_settings)
    queue = RQQueue(client, secret_settings)
    serializer = make_serializer("pickle", KEY.encode(), (OLD_KEY.encode(),))
    texts = [repr(secret_settings), str(secret_settings), repr(queue), repr(serializer), describe(client)]
    texts.append(repr(client))
    wrong = connect(replace(secret_settings, redis_url=server.url_for("app", "not-" + PASSWORD)))
    with pytest.raises(QueueError) as caught:
        Guard(wrong, 0.2).call(wrong.ping)
    texts.append(str(caught.value))
    with pytest.raises(QueueError) as unparseable:
        connect(replace(secret_settings, redis_url=f"redis://app:{PASSWORD}@127.0.0.1:notaport/0"))
    texts.append(str(unparseable.value))
    for text in texts:
        assert_clean(text.replace("not-" + PASSWORD, ""))
        assert "not-" + PASSWORD not in text
