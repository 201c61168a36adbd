"""What a worker reports about its jobs, for logs and metrics: a tiny observer port.

The loop calls every observer it was given; an observer must be quick and must not raise
(the loop logs and ignores an observer's exception rather than lose a job's outcome).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from app.infrastructure.queue.schema import Ending

if TYPE_CHECKING:
    from app.infrastructure.queue.store import Claim
    from app.worker.execution import Outcome

log = logging.getLogger("taskq.worker")

#: The words of `job_ended` (logs, metrics' `outcome` label), by how the attempt was recorded.
ENDINGS: Mapping[Ending, str] = MappingProxyType(
    {
        Ending.FINISHED: "finished",
        Ending.FAILED: "failed",
        Ending.RETRY: "retried",
        Ending.STOPPED: "stopped",
        Ending.REQUEUE: "requeued",
        Ending.SNOOZE: "snoozed",
        Ending.HANDBACK: "handed_back",  # not known here: back for a worker that knows it
    }
)


class WorkerEvents(Protocol):
    """Hooks the worker calls; implement the ones you need (see `NoEvents`)."""

    def job_started(self, claim: Claim) -> None:
        """A job was claimed and is about to run."""

    def job_ended(self, claim: Claim, ending: str, outcome: Outcome, duration: float) -> None:
        """An attempt was recorded; `ending` is one of the words of `ENDINGS`."""

    def jobs_reaped(self, queue: str, requeued: list[str], failed: list[str]) -> None:
        """The reaper took back the jobs of dead workers."""

    def jobs_settled(self, queue: str, canceled: list[str], released: list[str]) -> None:
        """Deferred jobs whose dependency ended outside taskq's worker (rq) were canceled or released."""

    def outcome_dropped(self, claim: Claim) -> None:
        """An outcome was not written: the job had been given to another worker (fencing)."""

    def schedule_fired(self, name: str, enqueued: int, skipped: int, missed: int) -> None:
        """This worker fired a schedule's ticks: jobs enqueued, ticks skipped (overlap), missed."""

    def loop_lag(self, seconds: float) -> None:
        """`--concurrency N`: how late the event loop answered its tick (about once a second)."""

    def loop_blocked(self, seconds: float, claim: Claim | None) -> None:
        """`--concurrency N`: a job (`claim`, if known) blocked the event loop past the threshold."""


class NoEvents:
    """Does nothing; subclass it and override what you need."""

    def job_started(self, claim: Claim) -> None:
        pass

    def job_ended(self, claim: Claim, ending: str, outcome: Outcome, duration: float) -> None:
        pass

    def jobs_reaped(self, queue: str, requeued: list[str], failed: list[str]) -> None:
        pass

    def jobs_settled(self, queue: str, canceled: list[str], released: list[str]) -> None:
        pass

    def outcome_dropped(self, claim: Claim) -> None:
        pass

    def schedule_fired(self, name: str, enqueued: int, skipped: int, missed: int) -> None:
        pass

    def loop_lag(self, seconds: float) -> None:
        pass

    def loop_blocked(self, seconds: float, claim: Claim | None) -> None:
        pass


class LogEvents(NoEvents):
    """One structured log line per job event: `event`, `job_id`, `job_name`, `queue`, `attempt`,
    and `duration` once it ended (`key=value` text, or JSON with `LOG_FORMAT=json`)."""

    def job_started(self, claim: Claim) -> None:
        # DEBUG: the ending line below carries everything a start line would, plus the outcome;
        # one line per job at INFO keeps the default logging cheap on a busy worker.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("job started", extra=_fields("started", claim))

    def job_ended(self, claim: Claim, ending: str, outcome: Outcome, duration: float) -> None:
        level = logging.WARNING if ending == "failed" else logging.INFO
        if not log.isEnabledFor(level):
            return
        fields = _fields(ending, claim)
        fields["duration"] = round(duration, 6)
        if outcome.error:
            fields["error"] = _last_line(outcome.error)
        log.log(level, "job %s", ending.replace("_", " "), extra=fields)

    def jobs_reaped(self, queue: str, requeued: list[str], failed: list[str]) -> None:
        for event, ids in (("requeued", requeued), ("failed", failed)):
            for job_id in ids:
                log.warning(
                    "job %s",
                    event,
                    extra={"event": event, "job_id": job_id, "queue": queue, "reason": "abandoned"},
                )

    def jobs_settled(self, queue: str, canceled: list[str], released: list[str]) -> None:
        reason = "a dependency ended outside taskq's worker (rq's cleanup or a plain rq worker)"
        for event, ids in (("canceled", canceled), ("released", released)):
            for job_id in ids:
                log.warning(
                    "job %s",
                    event,
                    extra={"event": event, "job_id": job_id, "queue": queue, "reason": reason},
                )


def _fields(event: str, claim: Claim) -> dict[str, object]:
    return {
        "event": event,
        "job_id": claim.job_id,
        "job_name": claim.record.job_name,
        "queue": claim.queue,
        "attempt": claim.attempt,
    }


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""
