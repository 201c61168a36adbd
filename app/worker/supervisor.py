"""`--processes N`: keep N worker processes alive, restarting any that dies.

Each worker is a fresh `python -m app.worker --processes 1 ...` process. SIGTERM/SIGINT are
passed on (first: finish current jobs; second: stop now). A worker that keeps dying at once is
restarted with a growing pause (0.5 s, 1 s, 2 s, ... up to 30 s) instead of in a tight loop; one
whose registered job paths do not import (exit 5) stops the supervisor with that code, since no
restart can fix a deploy. With `--burst`, a worker that exits 0
has drained the queues and is not restarted: the supervisor ends when all of them have. If the
supervisor itself is killed, its workers get SIGTERM from the kernel (Linux) and finish their
current job.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

from app.exits import Exit, describe
from app.infrastructure.process import die_with_parent

log = logging.getLogger("taskq.supervisor")

FAST_DEATH = 5.0
MAX_PAUSE = 30.0


class Supervisor:
    """Runs `count` copies of a worker command and keeps them running until told to stop."""

    def __init__(
        self, count: int, worker_args: Sequence[str], slot_args: Callable[[int], list[str]] | None = None
    ) -> None:
        self.count = count
        self.command = [sys.executable, "-m", "app.worker", "--processes", "1", "--supervised", *worker_args]
        # Arguments that differ per slot (its own metrics port), kept across restarts of that slot.
        self.slot_args = slot_args or (lambda slot: [])
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.started_at: dict[int, float] = {}
        self.restart_at: dict[int, float] = {}  # slot -> when its restart is due (never blocks the loop)
        self.fast_deaths = [0] * count  # deaths in a row, each under FAST_DEATH s after its start
        self.stopping = False
        self.restarts = 0
        self.code = Exit.OK
        self.burst = "--burst" in worker_args

    def run(self) -> int:
        """Until stopped (or, with `--burst`, drained); the exit code: 0, or a child's broken-path 5."""
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        for slot in range(self.count):
            self._start(slot)
        while self.children or (self.restart_at and not self.stopping):
            time.sleep(0.2)
            self._reap()
            self._restart_due()
        log.info("supervisor stopped; %d worker restarts", self.restarts)
        return int(self.code)

    def _start(self, slot: int) -> None:
        command = [*self.command, *self.slot_args(slot)]
        self.children[slot] = subprocess.Popen(command, preexec_fn=_term_with_parent)
        self.started_at[slot] = time.monotonic()
        log.info("worker process started slot=%d pid=%d", slot, self.children[slot].pid)

    def _reap(self) -> None:
        for slot, child in list(self.children.items()):
            code = child.poll()
            if code is None:
                continue
            del self.children[slot]
            if self.burst and code == Exit.OK:
                log.info("worker process done slot=%d (burst: queues empty)", slot)
            elif code == Exit.BROKEN_JOB_PATH:
                self._give_up(slot)
            elif not self.stopping:
                self._schedule(slot, code)

    def _give_up(self, slot: int) -> None:
        """A child's job path does not import: every restart would fail the same way."""
        log.error(
            "worker process slot=%d: %s; restarting cannot fix that: stopping every worker",
            slot,
            describe(Exit.BROKEN_JOB_PATH),
        )
        self.code = Exit.BROKEN_JOB_PATH
        self._forward(signal.SIGTERM, None)

    def _schedule(self, slot: int, code: int) -> None:
        """Restart the slot later: at once after a long life, after a growing pause in a crash loop."""
        lived = time.monotonic() - self.started_at[slot]
        self.fast_deaths[slot] = self.fast_deaths[slot] + 1 if lived < FAST_DEATH else 0
        pause = min(MAX_PAUSE, 0.5 * 2 ** (self.fast_deaths[slot] - 1)) if self.fast_deaths[slot] else 0.0
        self.restart_at[slot] = time.monotonic() + pause
        log.warning(
            "worker process died slot=%d %s lived=%.1fs; restart %d in %.1fs",
            slot,
            describe(code),
            lived,
            self.restarts + 1,
            pause,
        )

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, due in list(self.restart_at.items()):
            if self.stopping:
                self.restart_at.clear()
                return
            if now >= due:
                del self.restart_at[slot]
                self.restarts += 1
                self._start(slot)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)


def _term_with_parent() -> None:
    die_with_parent(signal.SIGTERM)
