"""The work horse: a child process per job (fork mode), so that a crash, a leak or a hang dies
with it. The forker (`forker.py`) forks them ahead of time, and the worker hands each one job
(`hand`). A child writes its `Outcome` to a pipe and closes it before exiting; the worker goes on
at once, and the forker reaps the child, instead of the worker waiting for the kernel to tear it
down.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app import tracing
from app.infrastructure.process import die_with_parent
from app.infrastructure.queue.store import Claim
from app.worker.execution import JobRunner, Outcome

if TYPE_CHECKING:
    from app.worker.forker import Forker, Spare

#: How long to wait for the forker to report how a horse without an outcome ended.
STATUS_WAIT = 5.0


@dataclass
class Horse:
    """A job running in a child process, watched by the worker."""

    pid: int
    read_fd: int


def horse_main(runner: JobRunner, job_read: int, outcome_write: int) -> None:
    """A work horse: runs exactly one job, handed to it later by `hand()`."""
    code = 1
    try:
        os.setpgrp()
        die_with_parent(signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        runner.rehearse()
        handed = _read_all(job_read)
        if handed:
            outcome = runner.run(pickle.loads(handed))  # our own worker wrote it
            _write_all(outcome_write, pickle.dumps(outcome))
            tracing.flush()  # os._exit skips the exporters' exit hooks
        code = 0
    finally:
        os._exit(code)


def hand(spare: Spare, claim: Claim) -> Horse:
    """Give the spare its job; from now on it is the horse running `claim`."""
    with contextlib.suppress(OSError):  # a dead spare: watch() sees no outcome and says how it ended
        _write_all(spare.job_fd, pickle.dumps(claim))
    return Horse(spare.pid, spare.outcome_fd)


def dismiss(spare: Spare) -> None:
    """Let an unused spare exit (it reads end-of-file instead of a job); reap it later."""
    for fd in (spare.job_fd, spare.outcome_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def watch(horse: Horse, claim: Claim, kill_after: float, forker: Forker) -> tuple[Outcome | None, str]:
    """Wait for the child's outcome; kill it once `kill_after` seconds have passed since the claim.

    Returns (the outcome or None if the child died without one, how it ended). With an outcome
    the child is left to exit on its own: the forker reaps it.
    """
    chunks: list[bytes] = []
    deadline = claim.started + kill_after
    ended = ""
    try:
        while True:
            readable, _, _ = select.select([horse.read_fd], [], [], max(0.0, deadline - time.time()))
            if readable:
                chunk = os.read(horse.read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            elif time.time() >= deadline:
                kill_group(horse.pid)
                ended = f"killed after its timeout of {kill_after:g} s"
                break
    finally:
        os.close(horse.read_fd)
    if not ended and chunks:
        with contextlib.suppress(Exception):
            return pickle.loads(b"".join(chunks)), ""  # our own child wrote it
    status = forker.status(horse.pid, timeout=STATUS_WAIT)
    if ended:
        return None, ended
    if status is None:
        return None, "work horse ended without an outcome"
    if os.WIFSIGNALED(status):
        return None, f"work horse terminated unexpectedly by signal {os.WTERMSIG(status)}"
    return None, f"work horse exited with status {os.WEXITSTATUS(status)} without an outcome"


def kill_group(pid: int) -> None:
    """SIGKILL a child's process group (the job and anything it started); it may be gone already.

    The child itself too: right after fork it may not lead its own group yet, and killpg alone
    would then miss it.
    """
    for kill in (os.kill, os.killpg):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.close(fd)  # the worker sees EOF now, not after this process is torn down
