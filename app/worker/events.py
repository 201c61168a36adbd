"""What a worker reports about its jobs, for logs and metrics: a tiny observer port.

The loop calls every observer it was given; an observer must be quick and must not raise
(the loop logs and ignores an observer's exception rather than lose a job's outcome).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from app.worker.execution import Claim, Outcome

log = logging.getLogger("taskq.worker")

#: The kinds of `job_ended`: how the attempt was recorded.
ENDINGS = ("finished", "failed", "retried", "stopped", "requeued")


class WorkerEvents(Protocol):
    """Hooks the worker calls; implement the ones you need (see `NoEvents`)."""

    def job_started(self, claim: Claim) -> None:
        """A job was claimed and is about to run."""

    def job_ended(self, claim: Claim, ending: str, outcome: Outcome, duration: float) -> None:
        """An attempt was recorded; `ending` is one of `ENDINGS`."""

    def jobs_reaped(self, queue: str, requeued: list[str], failed: list[str]) -> None:
        """The reaper took back the jobs of dead workers."""


class NoEvents:
    """Does nothing; subclass it and override what you need."""

    def job_started(self, claim: Claim) -> None:
        pass

    def job_ended(self, claim: Claim, ending: str, outcome: Outcome, duration: float) -> None:
        pass

    def jobs_reaped(self, queue: str, requeued: list[str], failed: list[str]) -> None:
        pass


class LogEvents(NoEvents):
    """One log line per job event, `key=value`."""

    def job_started(self, claim: Claim) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info(
                "job started id=%s name=%s queue=%s attempt=%d",
                claim.job_id,
                claim.record.description.partition("(")[0],
                claim.queue,
                claim.attempt,
            )

    def job_ended(self, claim: Claim, ending: str, outcome: Outcome, duration: float) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        error = f" error={_last_line(outcome.error)!r}" if outcome.error else ""
        log.info(
            "job %s id=%s queue=%s attempt=%d duration=%.3fs%s",
            ending,
            claim.job_id,
            claim.queue,
            claim.attempt,
            duration,
            error,
        )

    def jobs_reaped(self, queue: str, requeued: list[str], failed: list[str]) -> None:
        for job_id in requeued:
            log.warning("job requeued id=%s queue=%s reason=abandoned", job_id, queue)
        for job_id in failed:
            log.warning("job failed id=%s queue=%s reason=abandoned, no retries left", job_id, queue)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""
