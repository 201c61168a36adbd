"""The heartbeat thread's decision to cut a job short, with fakes for the worker's ports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.infrastructure.queue.record import JobRecord
from app.infrastructure.queue.store import Beat, Claim
from app.worker.upkeep import Upkeep


def claim(job_id: str) -> Claim:
    return Claim("default", job_id, "exec-" + job_id, 1, JobRecord(job_id, {}), time.time())


@dataclass
class FakeMode:
    kills: int = 0

    def kill(self) -> None:
        self.kills += 1


@dataclass
class FakeStore:
    """Answers every heartbeat 'not yours'; `moves_on` is what the loop runs by the time it answers."""

    worker: FakeWorker
    moves_on: Claim | None

    def heartbeat(self, beat_claim: Claim | None) -> Beat:
        self.worker.current = self.moves_on  # the main thread recorded the job meanwhile
        return Beat(job_ours=False, registered=True)


@dataclass
class FakeWorker:
    current: Claim | None
    mode: FakeMode = field(default_factory=FakeMode)
    store: FakeStore | None = None
    name: str = "w"


def test_a_job_that_ended_while_its_heartbeat_was_in_flight_does_not_cut_the_next_short():
    worker = FakeWorker(current=claim("a"))
    worker.store = FakeStore(worker, moves_on=claim("b"))
    Upkeep(worker, 1.0).beat()  # type: ignore[arg-type]
    assert worker.mode.kills == 0


def test_a_job_taken_back_while_it_still_runs_here_is_cut_short_once():
    worker = FakeWorker(current=claim("a"))
    worker.store = FakeStore(worker, moves_on=worker.current)
    upkeep = Upkeep(worker, 1.0)  # type: ignore[arg-type]
    upkeep.beat()
    upkeep.beat()
    assert worker.mode.kills == 1
