"""Run the real `taskq` console script against the test Redis, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TASKQ = Path(sys.executable).parent / "taskq"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The settings as environment variables, and a wide terminal so tables are not wrapped.

    PYTHONPATH: the test jobs live in `tests/`, which is not installed, and the commands run from
    a directory other than the repository (as an operator's shell or systemd would).
    """
    return {
        **os.environ,
        **settings.to_env(),
        "COLUMNS": "200",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory that is not the repository."""
    folder = tmp_path / "elsewhere"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def taskq(settings: Settings, elsewhere: Path) -> Callable[..., Run]:
    """`taskq(*args, env={...}, input=...)`: runs the console script from a directory other than
    the repository and returns its exit and output."""
    assert TASKQ.exists(), f"{TASKQ} is missing: run `make install`"

    def run(
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
        command: list[str] | None = None,
    ) -> Run:
        done = subprocess.run(
            [*(command or [str(TASKQ)]), *args],
            cwd=cwd or elsewhere,
            env=cli_env(settings, **(env or {})),
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    return run
