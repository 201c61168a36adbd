"""`python -m tests.support.declared_worker --name ... [worker options]`: the real worker, as a deploy
whose job_paths.py declares other params would run it.

`TASKQ_TEST_PARAMS` is JSON `{job path: {"model": "module.Class" | null, "version": n}}`; it
replaces `job_paths.PARAMS` for this process, through the composition root's registry. Nothing
else differs from `python -m app.worker`: the same command, Redis and preflight.
"""

from __future__ import annotations

import json
import os

from app import bootstrap
from app.config import Settings
from app.infrastructure.queue.import_utils import import_callable
from app.infrastructure.queue.job_params import JobParams
from app.infrastructure.queue.job_paths import JobRegistry
from app.worker.cli import worker_command

ENV = "TASKQ_TEST_PARAMS"


def declared(spec: dict[str, dict[str, object]]) -> dict[str, JobParams]:
    return {
        path: JobParams(
            import_callable(str(entry["model"])) if entry.get("model") else None,
            int(entry.get("version") or 1),
        )  # type: ignore[arg-type, call-overload]
        for path, entry in spec.items()
    }


def main() -> None:
    params = declared(json.loads(os.environ.get(ENV) or "{}"))

    def registry_for(settings: Settings) -> JobRegistry:
        return JobRegistry(extra=settings.extra_jobs, params=params)

    bootstrap.registry_for = registry_for
    worker_command(prog_name="python -m app.worker")


if __name__ == "__main__":
    main()
