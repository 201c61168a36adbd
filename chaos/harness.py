"""What every scenario shares: a queue Redis, a ledger Redis, workers, producers, the accounting."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from app.config import Settings
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.redis.connection import connect
from chaos.servers import PrivateRedis

ROOT = Path(__file__).resolve().parents[1]
JOB = ("record", "chaos.jobs.record")
ASYNC_JOB = ("record_async", "chaos.jobs.record_async")  # the same ledger, as an `async def` job
#: Worker settings for the suite: fast heartbeats and upkeep, so that recovery takes seconds.
WORKER_ENV = {
    "WORKER_HEARTBEAT_INTERVAL": "1",
    "WORKER_MAINTENANCE_INTERVAL": "2",
    "WORKER_IDLE_POLL": "0.5",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    jobs: int
    kills: int = 0
    lost: int = 0
    duplicates: int = 0
    recovery: float | None = None
    note: str = ""
    failures: list[str] = field(default_factory=list)
    #: A control row (a setting left out on purpose): its loss is measured and shown, not a failure.
    loss_expected: bool = False
    skipped: bool = False

    @property
    def passed(self) -> bool:
        return (self.lost == 0 or self.loss_expected) and not self.failures


def settings_for(url: str) -> Settings:
    return Settings(
        redis_url=url,
        extra_jobs=(JOB, ASYNC_JOB),
        retry_max=5,
        retry_base=0.2,
        retry_factor=2.0,
        retry_cap=2.0,
        redis_retry_seconds=1.5,
    )


class Fleet:
    """Worker processes (`python -m app.worker`), each restarted when it dies or is killed.

    `prefix` goes before the command: `["ip", "netns", "exec", name]` runs the workers on a
    simulated host (`chaos.netns`); `ip` execs the worker, so the pid is still the worker's.
    """

    def __init__(
        self,
        settings: Settings,
        ledger_url: str,
        count: int,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.prefix = list(prefix)
        self.env = {
            **os.environ,
            **settings.to_env(),
            **WORKER_ENV,
            "CHAOS_LEDGER_URL": ledger_url,
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.args = list(args)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        for _ in range(count):
            self.processes.append(self._start())

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "app.worker", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def revive(self) -> None:
        """Restart every worker that has exited (a crash, a kill, or a finished warm shutdown)."""
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                self.processes[index] = self._start()
                self.restarts += 1

    def kill(self, index: int) -> None:
        """SIGKILL a worker and its work horses, like an OOM kill or a lost host."""
        process = self.processes[index]
        for child in descendants(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(timeout=10)

    def terminate(self, index: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.processes[index].terminate()

    def signal(self, index: int, signum: int) -> None:
        """Send `signum` to one worker process only (SIGSTOP freezes it; its work horse goes on)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.processes[index].pid, signum)

    def alive(self) -> int:
        """How many of the workers are running (none has exited since it was started)."""
        return sum(process.poll() is None for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def direct_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every descendant of `pid` (its forker and the work horses under it), deepest first."""
    direct = direct_children(pid)
    return [grandchild for child in direct for grandchild in descendants(child)] + direct


class QueueServer(Protocol):
    """What a run needs of the queue's Redis: a `PrivateRedis`, or a whole `SentinelTopology`."""

    @property
    def url(self) -> str: ...

    def client(self) -> redis.Redis: ...

    def remove(self) -> None: ...


class Run:
    """A queue Redis and a ledger Redis for one scenario; removed at the end, whatever happens.

    By default both are started here on loopback; a topology scenario passes its own, started
    (a Sentinel topology, servers inside network namespaces), which `close()` removes all the same.
    """

    def __init__(
        self,
        *queue_redis_args: str,
        queue_server: QueueServer | None = None,
        ledger_server: PrivateRedis | None = None,
    ) -> None:
        self.queue_server: Any = queue_server or PrivateRedis(*queue_redis_args).start()
        try:
            self.ledger_server = ledger_server or PrivateRedis().start()
        except BaseException:
            self.queue_server.remove()
            raise
        self.settings = settings_for(self.queue_server.url)
        self.acknowledged: list[str] = []
        self.lost: list[tuple[str, int]] = []  # (job id, executions in the ledger), by `account`

    def producer(self, url: str | None = None) -> RQQueue:
        settings = settings_for(url) if url else self.settings
        return RQQueue(connect(settings), settings)

    def fleet(
        self,
        count: int,
        *args: str,
        url: str | None = None,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> Fleet:
        settings = settings_for(url) if url else self.settings
        return Fleet(settings, self.ledger_server.url, count, args, env, prefix)

    def enqueue_batches(
        self,
        queue: RQQueue,
        count: int,
        batch: int = 250,
        work: float = 0.0,
        priorities: Sequence[str] = ("default",),
        limit_keys: Sequence[str] = (),
        job_name: str = "record",
    ) -> None:
        """`count` record jobs, by batches; with `limit_keys`, each has one of them (in turn), and
        its execution's span is in the ledger under that key."""
        for start in range(0, count, batch):
            ids = [uuid.uuid4().hex for _ in range(min(batch, count - start))]
            requests = []
            for i, job_id in enumerate(ids):
                key = limit_keys[(start + i) % len(limit_keys)] if limit_keys else None
                params = {"token": job_id, "work": work, **({"span": key} if key else {})}
                requests.append(
                    JobRequest(
                        job_name,
                        params,
                        job_id=job_id,
                        priority=priorities[i % len(priorities)],  # type: ignore[arg-type]
                        limit_key=key,
                    )
                )
            queue.enqueue_many(requests)
            self.acknowledged += ids

    def wait_final(self, timeout: float, vanished_final: bool = False) -> float:
        """Wait (bounded) until every acknowledged job is finished or failed; return the seconds.

        With `vanished_final`, a job whose record is gone counts as final too (lost, but nothing
        more will happen to it): a control row that loses jobs on purpose does not wait for them.
        """
        started = time.monotonic()
        client = self.queue_server.client()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(redis.exceptions.RedisError):
                if not self.unfinished(client, limit=1, vanished_final=vanished_final):
                    return time.monotonic() - started
            time.sleep(0.2)
        return time.monotonic() - started

    def unfinished(
        self, client: redis.Redis, limit: int | None = None, vanished_final: bool = False
    ) -> list[str]:
        final = (b"finished", b"failed", None) if vanished_final else (b"finished", b"failed")
        open_ids = []
        for chunk in _chunks(self.acknowledged, 1000):
            with client.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.hget(f"rq:job:{job_id}", "status")
                for job_id, status in zip(chunk, pipe.execute(), strict=True):
                    if status not in final:
                        open_ids.append(job_id)
                        if limit and len(open_ids) >= limit:
                            return open_ids
        return open_ids

    def account(self, row: Row) -> Row:
        """lost = acknowledged - (finished and in the ledger, or failed); duplicates = executed > 1.

        The lost ids are kept in `self.lost`, with how often the ledger saw each one run.
        """
        queue, ledger = self.queue_server.client(), self.ledger_server.client()
        done = {member.decode() for member in ledger.smembers("done")}
        failed_final = 0
        for chunk in _chunks(self.acknowledged, 1000):
            with queue.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.hget(f"rq:job:{job_id}", "status")
                statuses = pipe.execute()
            counts = ledger.mget([f"exec:{job_id}" for job_id in chunk])
            for job_id, status, count in zip(chunk, statuses, counts, strict=True):
                finished = status == b"finished" and job_id in done
                failed_final += status == b"failed"
                if not (finished or status == b"failed"):
                    row.lost += 1
                    self.lost.append((job_id, int(count or 0)))
                row.duplicates += bool(count) and int(count) > 1
        row.jobs = len(self.acknowledged)
        if failed_final:
            row.note = (row.note + f"; {failed_final} failed after retries").lstrip("; ")
        return row

    def close(self) -> None:
        self.queue_server.remove()
        self.ledger_server.remove()


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
