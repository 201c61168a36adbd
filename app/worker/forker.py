"""The forker: a process, forked from the worker once, that forks the work horses for it (fork mode).

Why not fork from the worker itself: a fork shares every page with the child, and each page the
forking process writes afterwards is copied. The worker writes all over its memory between two
forks (claim, record, log: ~510 page copies per job, measured), so every job cost it ~1.4 ms of
system time. The forker sits idle in `select` between forks and writes almost nothing; it was
also forked before the worker started any thread, so no horse inherits a lock held by one.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.infrastructure.process import die_with_parent
from app.worker.execution import JobRunner
from app.worker.horse import dismiss, horse_main, pool_horse_main

#: A work horse's entry point, given the runner and its two pipe ends; it never returns.
HorseMain = Callable[[JobRunner, int, int], None]

#: How long to wait for a spare work horse before the forker is deemed stuck and replaced.
SPARE_WAIT = 30.0


@dataclass
class Spare:
    """A child forked ahead of time, blocked until it is handed its one job (or dismissed)."""

    pid: int
    job_fd: int
    outcome_fd: int


class ForkerGoneError(Exception):
    """Raised when the forker process is gone (killed): the worker starts a new one."""


class Forker:
    """The forker process, seen from the worker.

    Messages on a SOCK_SEQPACKET pair: the worker sends b"s" (fork a spare); the forker answers
    b"S<pid>" with the spare's two pipe ends attached, and b"X<pid>:<status>" when it has reaped
    a child. The forker dies with the worker (PDEATHSIG), and its horses with it.
    """

    def __init__(self, runner: JobRunner, pooled: bool = False) -> None:
        """`pooled`: its horses are pool mode's, each running jobs until retired (`pool_horse_main`)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # the forker: never returns
            ours.close()
            _forker_main(theirs, runner, pool_horse_main if pooled else horse_main)
        theirs.close()
        self.pid = pid
        self.sock = ours
        self.asked = 0  # spares asked for and not yet received
        self.spares: list[Spare] = []
        self.statuses: dict[int, int] = {}
        self.gone = False  # its end of the socket closed: it died, and its spares with it

    def ask(self) -> None:
        """Have a spare forked, without waiting for it: it forks while the worker goes on."""
        try:
            self.sock.send(b"s")
        except OSError as exc:
            raise ForkerGoneError(str(exc)) from exc
        self.asked += 1

    def spare(self) -> Spare:
        """The next spare work horse (asked for earlier, or now).

        Raises:
            ForkerGoneError: the forker died (its spares died with it): start a new one.
        """
        self._drain()
        self.statuses.clear()  # of horses whose outcome was taken: nobody will ask for them
        if self.gone:
            raise ForkerGoneError("the forker process exited")
        if not self.asked and not self.spares:
            self.ask()
        deadline = time.monotonic() + SPARE_WAIT
        while not self.spares:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ForkerGoneError(f"no work horse forked within {SPARE_WAIT:g} s")
            self._receive(left)
        return self.spares.pop(0)

    def status(self, pid: int, timeout: float) -> int | None:
        """The wait status of child `pid` once the forker has reaped it, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        while pid not in self.statuses:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                self._receive(left)
            except ForkerGoneError:
                return None
        return self.statuses.pop(pid)

    def exited(self, pid: int) -> bool:
        """Whether the forker has reported child `pid` reaped (read what it sent, without waiting)."""
        self._drain()
        return pid in self.statuses

    def close(self, timeout: float = 10.0) -> None:
        """Dismiss the spares; the forker waits for its children, then exits. Bounded."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)  # the forker reads end-of-file: no more spares
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._drain()  # spares still in flight, so that they are dismissed too
                for spare in self.spares:
                    dismiss(spare)
                self.spares.clear()
                if os.waitpid(self.pid, os.WNOHANG)[0]:
                    break
                time.sleep(0.005)
            else:
                os.kill(self.pid, signal.SIGKILL)  # it shares the worker's process group: not killpg
                os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass  # reaped already
        self.sock.close()

    def _drain(self) -> None:
        with contextlib.suppress(ForkerGoneError):
            while select.select([self.sock], [], [], 0)[0]:
                self._receive(0)

    def _receive(self, timeout: float | None) -> None:
        if not select.select([self.sock], [], [], timeout)[0]:
            return
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, 64, 2)
        except OSError as exc:
            self.gone = True
            raise ForkerGoneError(str(exc)) from exc
        if not data:
            self.gone = True
            raise ForkerGoneError("the forker process exited")
        if data[:1] == b"S" and len(fds) == 2:
            self.asked -= 1
            self.spares.append(Spare(int(data[1:]), fds[0], fds[1]))
        elif data[:1] == b"X":
            pid, status = data[1:].split(b":")
            self.statuses[int(pid)] = int(status)


def _forker_main(sock: socket.socket, runner: JobRunner, main: HorseMain) -> None:
    code = 1
    try:
        gc.disable()  # it allocates next to nothing; a collection would only copy pages
        die_with_parent(signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides; Ctrl-C reaches the group
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        children = 0
        open_ = True
        while open_ or children:
            watched: list[int] = [sock.fileno(), wake_read] if open_ else [wake_read]
            readable = select.select(watched, [], [], 1.0)[0]
            if wake_read in readable:
                os.read(wake_read, 512)
            children -= _reap_children(sock)
            if sock.fileno() in readable:
                message = sock.recv(16)
                if not message:
                    open_ = False
                elif message == b"s":
                    _fork_spare(sock, runner, (wake_read, wake_write), main)
                    children += 1
        code = 0
    finally:
        os._exit(code)


def _reap_children(sock: socket.socket) -> int:
    reaped = 0
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped += 1
        with contextlib.suppress(OSError):  # the worker is gone: nobody to tell
            sock.send(b"X%d:%d" % (pid, status))


def _fork_spare(sock: socket.socket, runner: JobRunner, private: tuple[int, int], main: HorseMain) -> None:
    job_read, job_write = os.pipe()
    outcome_read, outcome_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the work horse: never returns
        sock.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in (*private, job_write, outcome_read):
            os.close(fd)
        main(runner, job_read, outcome_write)
    os.close(job_read)
    os.close(outcome_write)
    with contextlib.suppress(OSError):  # the worker is gone: closing our ends lets the spare exit
        socket.send_fds(sock, [b"S%d" % pid], [job_write, outcome_read])
    os.close(job_write)
    os.close(outcome_read)
