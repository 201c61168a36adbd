"""Jobs used by the tests, registered through QUEUE_EXTRA_JOBS (never in job_paths.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from app.worker.runtime import PermanentError, current_job, report_progress


def add(a: int, b: int) -> int:
    return a + b


def echo(**params: Any) -> dict[str, Any]:
    """Returns its keyword arguments as received: proves params reach the job untouched."""
    return params


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def touch(path: str) -> str:
    Path(path).write_text("ran")
    return path


def record_start(path: str) -> float:
    """Appends the time it started to `path`, one line per run."""
    now = time.time()
    with open(path, "a") as handle:
        handle.write(f"{now!r}\n")
    return now


def fail_then_succeed(path: str, failures: int) -> int:
    """Fails `failures` times (counting runs in the file at `path`), then returns the run count."""
    runs = len(Path(path).read_text().splitlines()) + 1 if Path(path).exists() else 1
    with open(path, "a") as handle:
        handle.write(f"{time.time()!r}\n")
    if runs <= failures:
        raise RuntimeError(f"failing on purpose, run {runs}")
    return runs


def fail_always(message: str = "always fails") -> None:
    raise ValueError(message)


def fail_permanently(message: str = "cannot be fixed by retrying") -> None:
    raise PermanentError(message)


def progress(steps: int, pause: float = 0.0) -> int:
    for step in range(1, steps + 1):
        time.sleep(pause)
        report_progress(step, steps, f"step {step}")
    return steps


def whoami() -> dict[str, Any]:
    context = current_job()
    assert context is not None
    return {"job_id": context.job_id, "attempt": context.attempt, "pid": os.getpid()}


def ledger(path: str, token: str) -> str:
    """Appends `token` to the file at `path`: one line per execution."""
    with open(path, "a") as handle:
        handle.write(token + "\n")
    return token


def die(signum: int) -> None:
    """Kills its own process with `signum`, like a segfault or the OOM killer would."""
    os.kill(os.getpid(), signum)


def added_later(value: str) -> str:
    """A job of the next deploy: registered (see `LATER_JOB`) for new workers, not for old ones."""
    return value


TEST_JOBS = (
    ("add", f"{__name__}.add"),
    ("echo", f"{__name__}.echo"),
    ("sleep", f"{__name__}.sleep"),
    ("touch", f"{__name__}.touch"),
    ("record_start", f"{__name__}.record_start"),
    ("fail_then_succeed", f"{__name__}.fail_then_succeed"),
    ("fail_always", f"{__name__}.fail_always"),
    ("fail_permanently", f"{__name__}.fail_permanently"),
    ("progress", f"{__name__}.progress"),
    ("whoami", f"{__name__}.whoami"),
    ("ledger", f"{__name__}.ledger"),
    ("die", f"{__name__}.die"),
    ("fork_and_linger", f"{__name__}.fork_and_linger"),
    ("exit_now", f"{__name__}.exit_now"),
    ("big_result", f"{__name__}.big_result"),
    ("span", f"{__name__}.span"),
    ("rate_limited_once", f"{__name__}.rate_limited_once"),
    ("hold_memory", f"{__name__}.hold_memory"),
    ("async_span", f"{__name__}.async_span"),
    ("async_block", f"{__name__}.async_block"),
    ("async_ledger", f"{__name__}.async_ledger"),
    ("async_whoami", f"{__name__}.async_whoami"),
    ("async_progress", f"{__name__}.async_progress"),
    ("async_stubborn", f"{__name__}.async_stubborn"),
    ("double", f"{__name__}.double"),
    ("collect", f"{__name__}.collect"),
    ("start_chain", f"{__name__}.start_chain"),
    ("summarize", f"{__name__}.summarize"),
)
#: The job a deploy adds: producers and new workers register it next to TEST_JOBS, old workers do not.
LATER_JOB = ("added_later", f"{__name__}.added_later")


def fork_and_linger(seconds: float) -> str:
    """Forks a process that outlives the job (it holds every file the job had open), then returns."""
    if os.fork() == 0:
        time.sleep(seconds)
        os._exit(0)
    return "done"


def exit_now(code: int = 0) -> None:
    """Calls sys.exit inside the job, as some library code does."""
    raise SystemExit(code)


def big_result(size: int) -> str:
    return "x" * size


def span(path: str, seconds: float) -> float:
    """Appends `start <time> <pid>`, sleeps, appends `end <time> <pid>`: a ledger of who ran when."""
    with open(path, "a") as handle:
        handle.write(f"start {time.time()!r} {os.getpid()}\n")
    time.sleep(seconds)
    with open(path, "a") as handle:
        handle.write(f"end {time.time()!r} {os.getpid()}\n")
    return seconds


def rate_limited_once(path: str, retry_after: float) -> int:
    """Says RateLimited on its first run (429-style), then succeeds: runs counted in `path`."""
    from app.worker.runtime import RateLimited

    runs = len(Path(path).read_text().splitlines()) + 1 if Path(path).exists() else 1
    with open(path, "a") as handle:
        handle.write(f"{time.time()!r}\n")
    if runs == 1:
        raise RateLimited(retry_after)
    return runs


_HELD: list[bytearray] = []  # what `hold_memory` keeps: pool mode's horses outlive a job


def hold_memory(mb: int) -> int:
    """Keeps `mb` MiB resident after it returns (a leak, as far as its process can tell); its pid."""
    block = bytearray(mb << 20)
    for offset in range(0, len(block), 4096):
        block[offset] = 1  # touched: resident, not just reserved
    _HELD.append(block)
    return os.getpid()


async def async_span(path: str, seconds: float) -> float:
    """`span` on the event loop: `start <time> <pid>`, `await asyncio.sleep`, `end <time> <pid>`."""
    with open(path, "a") as handle:
        handle.write(f"start {time.time()!r} {os.getpid()}\n")
    await asyncio.sleep(seconds)
    with open(path, "a") as handle:
        handle.write(f"end {time.time()!r} {os.getpid()}\n")
    return seconds


async def async_block(path: str, seconds: float) -> float:
    """Blocks the event loop it runs on (`time.sleep` inside `async def`: the arq#230 pitfall)."""
    with open(path, "a") as handle:
        handle.write(f"start {time.time()!r}\n")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    with open(path, "a") as handle:
        handle.write(f"end {time.time()!r}\n")
    return seconds


async def async_ledger(path: str, token: str, seconds: float = 0.0) -> str:
    """Awaits `seconds`, then appends `token` to `path`: one line per completed execution."""
    await asyncio.sleep(seconds)
    with open(path, "a") as handle:
        handle.write(token + "\n")
    return token


async def async_whoami(seconds: float = 0.0) -> dict[str, Any]:
    await asyncio.sleep(seconds)
    context = current_job()
    assert context is not None
    return {"job_id": context.job_id, "attempt": context.attempt, "pid": os.getpid()}


async def async_progress(steps: int, pause: float = 0.0) -> int:
    for step in range(1, steps + 1):
        await asyncio.sleep(pause)
        report_progress(step, steps, f"step {step}")
    return steps


async def async_stubborn(seconds: float) -> str:
    """Blocks the loop and swallows whatever interrupts it, for `seconds`: only a process kill ends it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(BaseException):  # that is the point: it ignores its timeout
            time.sleep(0.05)
    return "survived"


def double(value: int = 1, prev: Any = None) -> int:
    """A chain's step: twice the previous job's result (`prev`, passed by the chain), or `value`."""
    return 2 * (prev if isinstance(prev, int) else value)


def collect(key: str, results: Any = None) -> int:
    """A workflow callback: counts its run and keeps what it was given, in the test's Redis, under
    `taskq:test:<key>` (a ledger: `:runs` incremented once per execution, `:input` the JSON)."""
    import json

    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    client.incr(f"taskq:test:{key}:runs")
    client.set(f"taskq:test:{key}:input", json.dumps(results, default=repr))
    return len((results or {}).get("results", {})) if isinstance(results, dict) else 0


def start_chain(values: list[int], results: Any = None) -> list[str]:
    """A group's callback that starts a chain of `double` jobs from inside the job (nested)."""
    from app.bootstrap import bootstrap
    from app.infrastructure.queue.port import JobRequest

    queue = bootstrap().queue
    total = sum(v for v in (results or {}).get("results", {}).values() if isinstance(v, int))
    steps = [JobRequest("double", {"value": total})] + [JobRequest("double", {}) for _ in values]
    return queue.chain(steps, pass_result="prev")


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """A callback returning only the shape of what it got (results kept, truncated, counts)."""
    return {"kept": len(results["results"]), "truncated": results["truncated"], "counts": results["counts"]}
