"""The work horse: a child process per job (fork mode), so that a crash, a leak or a hang dies
with it. The forker (`forker.py`) forks them ahead of time, and the worker hands each one job
(`hand`). A child writes its `Outcome` to a pipe and closes it before exiting; the worker goes on
at once, and the forker reaps the child, instead of the worker waiting for the kernel to tear it
down.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import resource
import select
import signal
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import tracing
from app.infrastructure.process import adopt_orphans, die_with_parent
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


def become_horse() -> None:
    """A forked child becomes a work horse: its own process group, dead with the forker, deaf to
    SIGTERM. The worker decides when a job stops (SIGKILL for a timeout or a stop); a SIGTERM sent
    to every process of a service (`systemctl stop`) must not kill the job the worker finishes."""
    os.setpgrp()
    die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def horse_main(runner: JobRunner, job_read: int, outcome_write: int) -> None:
    """A work horse: runs exactly one job, handed to it later by `hand()`."""
    code = 1
    try:
        become_horse()
        runner.rehearse()
        handed = _read_all(job_read)
        if handed:
            outcome = runner.run(pickle.loads(handed))  # our own worker wrote it
            tracing.flush()  # os._exit skips the exporters' exit hooks; the worker may kill us now
            payload = pickle.dumps(outcome)
            _write_all(outcome_write, len(payload).to_bytes(8, "big") + payload)
        code = 0
    finally:
        os._exit(code)


def pool_horse_main(runner: JobRunner, job_read: int, outcome_write: int) -> None:
    """A pool-mode work horse: runs the jobs handed to it by `hand_next()`, one at a time, until
    its job pipe closes (the worker retires it) or it is killed. Each reply is the outcome and
    the horse's peak resident memory, length-prefixed; then whatever the job started
    and left running is ended, as fork mode's process-group kill does."""
    code = 1
    try:
        become_horse()
        adopt_orphans()  # a job's grandchildren, orphaned, come back to us to be ended
        gc.enable()  # the forker runs without the collector; a horse running many jobs needs it
        runner.rehearse()
        while (handed := _read_message(job_read)) is not None:
            outcome = runner.run(pickle.loads(handed))  # our own worker wrote it
            tracing.flush()  # the worker may kill us (a later job's timeout) with spans buffered
            payload = pickle.dumps((outcome, _peak_rss()))
            _write_message(outcome_write, payload)
            _end_strays()
        code = 0
    finally:
        os._exit(code)


def hand_next(horse: Horse, job_fd: int, claim: Claim) -> bool:
    """Give a pool horse its next job; False if it is gone (its pipe has no reader)."""
    try:
        _write_message(job_fd, pickle.dumps(claim))
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    """This horse's peak resident memory, in bytes (one system call: reading /proc took 50 us)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _end_strays() -> None:
    """End the processes the last job left running: none, most of the time (one system call).

    Bounded rounds: a killed child's own children come back to us (`adopt_orphans`) to be ended.
    """
    for _ in range(10):
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass  # reap those that ended
        except ChildProcessError:
            return  # no child at all
        for pid in _children():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def _children() -> list[int]:
    found = []
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as listed:
            found += [int(pid) for pid in listed.read().split()]
    return found


def _read_message(fd: int) -> bytes | None:
    """One length-prefixed message from a blocking pipe; None at end of file."""
    head = _read_exactly(fd, 8)
    if head is None:
        return None
    return _read_exactly(fd, int.from_bytes(head, "big"))


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 16))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_message(fd: int, payload: bytes) -> None:
    view = memoryview(len(payload).to_bytes(8, "big") + payload)
    while view:
        view = view[os.write(fd, view) :]


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

    The outcome is length-prefixed: it is complete without waiting for the pipe to close, which a
    process the job forked (and left running) may hold open. The child's death, which the forker
    reports, ends the wait too. Once the outcome is in, the child's process group is killed, so
    nothing the job started outlives it. Returns (the outcome or None, how it ended).
    """
    try:
        inbox, ended = _await(horse, claim.started, kill_after, forker)
    finally:
        os.close(horse.read_fd)
    # What the job started and left running dies with it (at its timeout, the child too).
    kill_group(horse.pid, leader=bool(ended))
    if not ended and inbox.complete:
        with contextlib.suppress(Exception):
            return pickle.loads(inbox.payload()), ""  # our own child wrote it
    return None, ended or _how_it_ended(forker, horse.pid)


def watch_pooled(horse: Horse, claim: Claim, kill_after: float, forker: Forker) -> tuple[Any, str]:
    """`watch` for a long-lived horse (pool mode): with its reply in, the horse is left running
    for the next job. Without one (dead, killed at its timeout), its process group is killed and
    the caller closes its pipes. Returns (the reply or None, how it ended)."""
    inbox, ended = _await(horse, claim.started, kill_after, forker)
    if not ended and inbox.complete:
        with contextlib.suppress(Exception):
            return pickle.loads(inbox.payload()), ""  # our own child wrote it
    kill_group(horse.pid)
    return None, ended or _how_it_ended(forker, horse.pid)


def _await(horse: Horse, started: float, kill_after: float, forker: Forker) -> tuple[_Inbox, str]:
    """Read the horse's length-prefixed reply until it is complete, the horse is gone, or it is
    `kill_after` seconds past `started` (then: why it ended)."""
    inbox = _Inbox()
    deadline = started + kill_after
    while not inbox.complete:
        watched = [horse.read_fd] if forker.gone else [horse.read_fd, forker.sock.fileno()]
        readable, _, _ = select.select(watched, [], [], max(0.0, deadline - time.time()))
        if horse.read_fd in readable and not inbox.read(horse.read_fd):
            break  # end of file: the child is gone
        if forker.sock.fileno() in readable and forker.exited(horse.pid):
            inbox.drain(horse.read_fd)
            break
        if not readable and time.time() >= deadline:
            return inbox, f"killed after its timeout of {kill_after:g} s"
    return inbox, ""


def _how_it_ended(forker: Forker, pid: int) -> str:
    status = forker.status(pid, timeout=STATUS_WAIT)
    if status is None:
        return "work horse ended without an outcome"
    if os.WIFSIGNALED(status):
        return f"work horse terminated unexpectedly by signal {os.WTERMSIG(status)}"
    return f"work horse exited with status {os.WEXITSTATUS(status)} without an outcome"


class _Inbox:
    """A length-prefixed message read in chunks: 8 bytes of length, then the payload."""

    def __init__(self) -> None:
        self.data = bytearray()

    @property
    def complete(self) -> bool:
        return len(self.data) >= 8 and len(self.data) >= 8 + int.from_bytes(self.data[:8], "big")

    def read(self, fd: int) -> bool:
        chunk = os.read(fd, 1 << 16)
        self.data += chunk
        return bool(chunk)

    def drain(self, fd: int) -> None:
        """What is left in the pipe, without blocking (the writer is gone)."""
        while not self.complete and select.select([fd], [], [], 0)[0] and self.read(fd):
            pass

    def payload(self) -> bytes:
        return bytes(self.data[8 : 8 + int.from_bytes(self.data[:8], "big")])


def kill_group(pid: int, leader: bool = True) -> None:
    """SIGKILL a child's process group (the job and anything it started); it may be gone already.

    With `leader`, the child itself too: right after fork it may not lead its own group yet, and
    killpg alone would then miss it. Without, only the group: the child is exiting on its own.
    """
    for kill in (os.kill, os.killpg) if leader else (os.killpg,):
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
