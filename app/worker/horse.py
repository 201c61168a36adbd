"""The work horse: a child process per job (fork mode), so that a crash, a leak or a hang dies
with it. Children are forked ahead of time (`spawn`) and handed one job each (`hand`). A child
writes its `Outcome` to a pipe and closes it before exiting; the worker goes on at once and
reaps the child later, instead of waiting for the kernel to tear it down.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import signal
import time
from dataclasses import dataclass

from app import tracing
from app.infrastructure.process import die_with_parent
from app.worker.execution import Claim, JobRunner, Outcome


@dataclass
class Horse:
    """A job running in a child process, watched by the worker."""

    pid: int
    read_fd: int


@dataclass
class Spare:
    """A child forked ahead of time, blocked until it is handed its one job (or dismissed)."""

    pid: int
    job_fd: int
    outcome_fd: int


def spawn(runner: JobRunner) -> Spare:
    """Fork a spare work horse. It runs exactly one job, handed to it later by `hand()`.

    Forking before the job is claimed takes the fork off the path from enqueue to start, and
    overlaps it with the previous job; each job still gets a fresh process of its own.
    """
    job_read, job_write = os.pipe()
    outcome_read, outcome_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            gc.disable()  # it lives milliseconds; a collection would only copy pages
            os.close(job_write)
            os.close(outcome_read)
            os.setpgrp()
            die_with_parent(signal.SIGKILL)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            runner.rehearse()
            handed = _read_all(job_read)
            if handed:
                outcome = runner.run(pickle.loads(handed))  # our own parent wrote it
                _write_all(outcome_write, pickle.dumps(outcome))
                tracing.flush()  # os._exit skips the exporters' exit hooks
            code = 0
        finally:
            os._exit(code)
    os.close(job_read)
    os.close(outcome_write)
    return Spare(pid, job_write, outcome_read)


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


def watch(horse: Horse, claim: Claim, kill_after: float) -> tuple[Outcome | None, str, bool]:
    """Wait for the child's outcome; kill it once `kill_after` seconds have passed since the claim.

    Returns (the outcome or None if the child died without one, how it ended, whether the child
    was reaped). With an outcome the child is left to exit on its own: `reap()` collects it.
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
            return pickle.loads(b"".join(chunks)), "", False  # our own child wrote it
    _, status = os.waitpid(horse.pid, 0)
    if not ended and os.WIFSIGNALED(status):
        ended = f"work horse terminated unexpectedly by signal {os.WTERMSIG(status)}"
    elif not ended:
        ended = f"work horse exited with status {os.WEXITSTATUS(status)} without an outcome"
    return None, ended, True


def reap(pids: list[int], block: bool = False) -> list[int]:
    """Collect the exited children among `pids`; return the ones still running."""
    alive = []
    for pid in pids:
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            continue
        if done == 0:
            alive.append(pid)
    return alive


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
