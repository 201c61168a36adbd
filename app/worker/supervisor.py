"""`--processes N`: keep N worker processes alive, restarting any that dies.

Each worker is a fresh `python -m app.worker --processes 1 ...` process. SIGTERM/SIGINT are
passed on (first: finish current jobs; second: stop now). A worker that keeps dying at once is
restarted with a growing pause instead of in a tight loop. With `--burst`, a worker that exits 0
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
        self.pause = [0.0] * count
        self.stopping = False
        self.restarts = 0
        self.burst = "--burst" in worker_args

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        for slot in range(self.count):
            self._start(slot)
        while self.children:
            time.sleep(0.2)
            for slot, child in list(self.children.items()):
                code = child.poll()
                if code is None:
                    continue
                del self.children[slot]
                if self.burst and code == 0:
                    log.info("worker process done slot=%d (burst: queues empty)", slot)
                elif not self.stopping:
                    self._restart(slot, code)
        log.info("supervisor stopped; %d worker restarts", self.restarts)
        return 0

    def _start(self, slot: int) -> None:
        command = [*self.command, *self.slot_args(slot)]
        self.children[slot] = subprocess.Popen(command, preexec_fn=_term_with_parent)
        self.started_at[slot] = time.monotonic()
        log.info("worker process started slot=%d pid=%d", slot, self.children[slot].pid)

    def _restart(self, slot: int, code: int) -> None:
        lived = time.monotonic() - self.started_at[slot]
        self.pause[slot] = min(MAX_PAUSE, max(0.5, self.pause[slot] * 2)) if lived < FAST_DEATH else 0.0
        log.warning(
            "worker process died slot=%d exit=%s lived=%.1fs; restarting in %.1fs",
            slot,
            code,
            lived,
            self.pause[slot],
        )
        deadline = time.monotonic() + self.pause[slot]
        while time.monotonic() < deadline and not self.stopping:
            time.sleep(0.1)
        if not self.stopping:
            self.restarts += 1
            self._start(slot)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signum)


def _term_with_parent() -> None:
    die_with_parent(signal.SIGTERM)
