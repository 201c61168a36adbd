"""TLS end to end: a private redis-server with a throwaway certificate, rediss:// everywhere."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.infrastructure.queue.errors import QueueUnavailableError
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.connection import Guard, connect, describe
from chaos.servers import PrivateRedis, TlsFiles, server_has_tls
from tests.e2e.conftest import TASKQ, cli_env
from tests.support.processes import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateRedis]:
    if not server_has_tls():
        pytest.skip("this redis-server was built without TLS (no libssl): TLS is not tested here")
    with PrivateRedis(tls=True) as private:
        yield private


def test_enqueue_worker_and_cli_work_over_tls(server, settings):
    tls = replace(settings, redis_url=server.url_for(), signing_key=b"tls-test-signing-key-0123")
    assert tls.redis_url.startswith("rediss://127.0.0.1:") and "ssl_ca_certs=" in tls.redis_url
    client = connect(tls)
    assert describe(client).startswith("rediss://")
    queue = RQQueue(client, tls)
    job_id = queue.enqueue("add", {"a": 20, "b": 22})
    with WorkerProcess(tls) as worker:
        assert queue.wait(job_id, timeout=20).result == 42
    assert "QUEUE_SIGNING_KEY is not set" not in worker.output
    run = subprocess.run(
        [str(TASKQ), "status", job_id], cwd=ROOT, env=cli_env(tls), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and "finished" in run.stdout, run.stderr


def test_plain_text_to_the_tls_port_is_refused(server, settings):
    plain = replace(settings, redis_url=f"redis://127.0.0.1:{server.port}/0", redis_retry_seconds=0.2)
    client = connect(plain, socket_timeout=1.0)
    with pytest.raises(QueueUnavailableError):
        Guard(client, 0.2).call(client.ping)


def test_a_certificate_from_another_authority_is_refused(server, settings, tmp_path):
    assert server.tls is not None
    stranger = TlsFiles.make(tmp_path)
    url = server.url_for().replace(str(server.tls.cert), str(stranger.cert))
    client = connect(replace(settings, redis_url=url), socket_timeout=2.0)
    with pytest.raises(QueueUnavailableError, match=r"(?i)certificate"):
        Guard(client, 0.2).call(client.ping)
