"""Process helpers shared by the worker, its supervisor, the embedded server and the dev tools."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import signal
import subprocess
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def _prctl() -> Any:
    """libc's prctl, loaded once: a work horse calls it first thing, on the path of every job."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Linux: have the kernel send `signum` to this process when its parent dies (elsewhere: no-op).

    Call it in a child right after fork (or as `preexec_fn`), so nothing outlives its owner unseen.
    """
    prctl = _prctl()
    if prctl is not None:
        with contextlib.suppress(OSError):
            prctl(_PR_SET_PDEATHSIG, signum)


def adopt_orphans() -> None:
    """Linux: descendants orphaned below this process become its children (elsewhere: no-op).

    A long-lived work horse uses it to find, and end, whatever a job started and left running.
    """
    prctl = _prctl()
    if prctl is not None:
        with contextlib.suppress(OSError):
            prctl(_PR_SET_CHILD_SUBREAPER, 1)


def stop_process(process: subprocess.Popen[Any] | None, grace: float = 10.0) -> None:
    """SIGTERM a child we started, by its pid; SIGKILL it if it is still there after `grace` s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
