"""Starting and stopping the worker processes: each one by its pid, each wait bounded."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from app.infrastructure.process import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class Procs:
    """Worker processes started together, logging to files under `logs`, stopped together by pid."""

    def __init__(self, name: str, commands: Sequence[Sequence[str]], env: Mapping[str, str], logs: Path):
        self.name = name
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.started = time.perf_counter()
        self.children: list[subprocess.Popen[bytes]] = []
        for i, command in enumerate(commands):
            with open(logs / f"{name}-{i}.log", "wb") as log:
                self.children.append(
                    subprocess.Popen(
                        list(command),
                        cwd=ROOT,
                        env=full_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own group: a master's children can be reached
                        preexec_fn=_term_with_parent,  # if the harness is killed, so are its workers
                    )
                )

    def alive(self) -> bool:
        return any(child.poll() is None for child in self.children)

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.005)
        return False

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM each child by pid, then SIGKILL its own process group if it lingers."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)  # the group we created for it
                child.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        out = []
        for path in sorted(self.logs.glob(f"{self.name}-*.log")):
            out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)


def _term_with_parent() -> None:
    die_with_parent(signal.SIGTERM)


def wait_until(
    done: Callable[[], bool], timeout: float, procs: Procs | None = None, poll: float = 0.005
) -> float:
    """Seconds until `done()` is true, polled every `poll` s; raises on timeout or if `procs` all died."""
    start = time.perf_counter()
    deadline = start + timeout
    while not done():
        now = time.perf_counter()
        if now > deadline:
            raise TimeoutError(f"not done after {timeout:.0f}s" + (f"\n{procs.tail()}" if procs else ""))
        if procs is not None and not procs.alive() and not done():
            raise RuntimeError(f"{procs.name}: workers exited before the work was done\n{procs.tail()}")
        time.sleep(poll)
    return time.perf_counter() - start
