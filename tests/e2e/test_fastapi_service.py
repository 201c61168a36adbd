"""The example service end to end: uvicorn, real workers, 500 requests from 50 concurrent clients;
every accepted job runs exactly once (the workers' ending lines are the ledger)."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace

import httpx

from app.infrastructure.queue.port import JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from chaos.servers import free_port
from tests.support.processes import ROOT, WorkerProcess, wait_until

REQUESTS, CLIENTS = 500, 50
_ENDED = re.compile(r"job (finished|failed|retried|requeued|stopped|handed back) job_id=(\w+)")


def test_500_requests_from_50_clients_each_run_exactly_once(settings, r, tmp_path):
    documents = tmp_path / "documents"
    documents.mkdir()
    for i in range(REQUESTS):
        (documents / f"doc-{i}.txt").write_text(f"document {i} " + "word " * 150)
    local = replace(settings, documents_dir=documents, ingested_dir=tmp_path / "ingested")
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_service.service:app", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env={**os.environ, **local.to_env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    workers = [WorkerProcess(local, "--concurrency", "20") for _ in range(2)]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base) or server.poll() is not None, timeout=30, what="uvicorn")
        assert server.poll() is None, server.communicate(timeout=5)[0]
        for worker in workers:
            worker.start()
        accepted = asyncio.run(_fire(base))
        assert len(accepted) == REQUESTS and len(set(accepted.values())) == REQUESTS
        queue = RQQueue(r, local)
        wait_until(
            lambda: all(queue.get(job_id).is_final for job_id in accepted.values()),
            timeout=120,
            interval=0.2,
            what="every accepted job to end",
        )
        view = asyncio.run(_view(base, accepted["doc-7"]))
        assert view["status"] == "finished" and view["result"]["doc_id"] == "doc-7"
        assert view["attempts"] == 1
        assert asyncio.run(_status(base, "/jobs/no-such-job")) == 404
    finally:
        for worker in workers:
            worker.stop()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    statuses = {queue.get(job_id).status for job_id in accepted.values()}
    assert statuses == {JobStatus.FINISHED}
    ledger = collections.Counter()
    for worker in workers:
        for ending, job_id in _ENDED.findall(worker.output):
            ledger[(ending, job_id)] += 1
    assert {job_id for (_, job_id) in ledger} == set(accepted.values())
    assert set(ledger.values()) == {1} and {ending for (ending, _) in ledger} == {"finished"}
    assert sorted(p.name for p in (tmp_path / "ingested").iterdir()) == sorted(
        f"doc-{i}.jsonl" for i in range(REQUESTS)
    )


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def _fire(base: str) -> dict[str, str]:
    """REQUESTS POSTs from CLIENTS concurrent clients; {doc_id: job id} of the 202s."""
    pending: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        pending.put_nowait(i)
    accepted: dict[str, str] = {}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while not pending.empty():
                i = pending.get_nowait()
                response = await http.post(f"/documents/doc-{i}")
                assert response.status_code == 202, response.text
                accepted[f"doc-{i}"] = response.json()["job_id"]

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return accepted


async def _view(base: str, job_id: str) -> dict:
    async with httpx.AsyncClient(base_url=base) as http:
        return (await http.get(f"/jobs/{job_id}")).json()


async def _status(base: str, path: str) -> int:
    async with httpx.AsyncClient(base_url=base) as http:
        return (await http.get(path)).status_code
