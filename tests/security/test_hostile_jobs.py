"""Someone who can write to Redis writes a job: a real worker process refuses it, and goes on.

Each test creates a normal job with the real enqueue, then overwrites fields of its hash the way
an attacker with write access would, runs `python -m app.worker --burst`, and reads the outcome
from the raw hash (nothing of the hostile data is loaded by the test itself).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from app.infrastructure.queue.errors import InvalidOptionError
from app.infrastructure.queue.job_spec import compress
from app.infrastructure.queue.record import JobRecord
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.serialization import PickleSerializer, SignedSerializer
from tests.support.processes import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SIGNING_KEY = b"the-real-signing-key-0123456789"
#: Address space for the worker under `prlimit --as` in the bomb test. A worker measured at
#: VmPeak ~252 MiB, VmRSS ~38 MiB after 20 jobs (fork mode, signing on); inflating 1 GiB cannot fit.
ADDRESS_SPACE_BOUND = 512 * 1024 * 1024


class Touch:
    """Unpickling this runs `touch <path>`: what a hostile pickle does."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class OpenForWriting:
    """Unpickling this creates the file: `open(path, 'w')`, no shell needed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def plant(r, job_id: str, **fields: bytes | str) -> None:
    assert r.exists(f"rq:job:{job_id}")
    r.hset(f"rq:job:{job_id}", mapping=fields)


def outcome(r, job_id: str) -> tuple[str, str]:
    record = JobRecord(job_id, r.hgetall(f"rq:job:{job_id}"))
    return record.status, record.error_text() or ""


def run_burst(settings, *prefix: str) -> WorkerProcess:
    worker = WorkerProcess(settings, "--burst")
    worker.args = [*prefix, *worker.args]
    worker.start(wait_ready=False)
    assert worker.wait(timeout=60) == 0, worker.output
    return worker


def then_a_normal_job(queue: RQQueue, tmp_path: Path) -> tuple[str, Path]:
    after = tmp_path / "normal-job-ran"
    return queue.enqueue("touch", {"path": str(after)}), after


@pytest.mark.parametrize("gadget", [Touch, OpenForWriting])
@pytest.mark.parametrize("signer", ["unsigned", "signed-with-another-key"])
def test_a_hostile_pickle_is_never_unpickled_when_signing_is_on(settings, r, tmp_path, gadget, signer):
    signed = replace(settings, signing_key=SIGNING_KEY)
    queue = RQQueue(r, signed)
    victim = queue.enqueue("add", {"a": 1, "b": 2})
    evidence = tmp_path / "pwned"
    blob = PickleSerializer.dumps((gadget(evidence), None, (), {}))
    if signer != "unsigned":
        blob = SignedSerializer(PickleSerializer(), b"an-attackers-own-key-000").dumps(blob)
    plant(r, victim, data=zlib.compress(blob))
    normal, after = then_a_normal_job(queue, tmp_path)

    run_burst(signed)

    status, error = outcome(r, victim)
    assert not evidence.exists()
    assert status == "failed" and "SignatureError" in error, error
    assert "refused to load it" in error
    assert outcome(r, normal)[0] == "finished" and after.exists()


def test_json_mode_never_unpickles_either(settings, r, tmp_path):
    plain = replace(settings, serializer="json")
    queue = RQQueue(r, plain)
    victim = queue.enqueue("add", {"a": 1, "b": 2})
    evidence = tmp_path / "pwned"
    plant(r, victim, data=zlib.compress(PickleSerializer.dumps((Touch(evidence), None, (), {}))))
    normal, after = then_a_normal_job(queue, tmp_path)

    run_burst(plain)

    status, error = outcome(r, victim)
    assert not evidence.exists()
    assert status == "failed" and "PayloadError" in error and "does not decode" in error, error
    assert outcome(r, normal)[0] == "finished" and after.exists()


@pytest.mark.parametrize("grace", [0.0, 3600.0], ids=["no grace", "default grace"])
def test_an_unregistered_function_is_refused_unimported(settings, r, tmp_path, grace):
    # JSON mode without a key: the allow-list alone stands between a writer and os.system.
    plain = replace(settings, serializer="json", unknown_job_grace=grace)
    queue = RQQueue(r, plain)
    victim = queue.enqueue("add", {"a": 1, "b": 2})
    evidence = tmp_path / "pwned"
    call = json.dumps(["os.system", None, [f"touch {evidence}"], {}]).encode()
    plant(r, victim, data=compress(call), description=f"os.system('touch {evidence}')")
    normal, after = then_a_normal_job(queue, tmp_path)

    run_burst(plain)

    status, error = outcome(r, victim)
    assert not evidence.exists()
    if grace:  # a name no worker here knows is handed back for one that does (a deploy may be late)
        assert status == "scheduled" and "does not know os.system" in error, error
    else:
        assert status == "failed" and error == "job not found: no live worker knows os.system", error
    assert outcome(r, normal)[0] == "finished" and after.exists()


@pytest.mark.parametrize(
    ("field", "callback"),
    [
        ("success_callback_name", "os.system"),
        ("failure_callback_name", "tests.support.jobs.touch"),  # a registered job is not a callback
        ("stopped_callback_name", "builtins.exec"),
    ],
)
def test_an_unregistered_callback_is_refused_and_its_job_does_not_run(settings, r, tmp_path, field, callback):
    signed = replace(settings, signing_key=SIGNING_KEY)
    queue = RQQueue(r, signed)
    evidence = tmp_path / "job-ran"
    victim = queue.enqueue("touch", {"path": str(evidence)})
    plant(r, victim, **{field: callback})
    normal, after = then_a_normal_job(queue, tmp_path)

    run_burst(signed)

    status, error = outcome(r, victim)
    assert not evidence.exists()
    assert status == "failed" and "JobNotAllowedError" in error, error
    assert f"callback {callback!r}" in error
    assert outcome(r, normal)[0] == "finished" and after.exists()


def zlib_bomb(inflated: int) -> bytes:
    """zlib data that inflates to `inflated` zero bytes, built in 1 MiB steps (never held whole)."""
    deflater = zlib.compressobj(9)
    chunk = bytes(1024 * 1024)
    parts = [deflater.compress(chunk) for _ in range(inflated // len(chunk))]
    return b"".join([*parts, deflater.flush()])


@pytest.mark.parametrize(
    ("inflated", "reason"),
    [
        (1024**3, "stored job data is"),  # ~1 MiB stored: over the bound before inflating anything
        (256 * 1024**2, "job data inflates past the limit"),  # ~250 KiB stored: stopped while inflating
    ],
    ids=["1GiB", "256MiB"],
)
def test_a_zlib_bomb_fails_fast_under_a_memory_bound_and_the_worker_goes_on(
    settings, r, tmp_path, inflated, reason
):
    signed = replace(settings, signing_key=SIGNING_KEY)
    queue = RQQueue(r, signed)
    victim = queue.enqueue("add", {"a": 1, "b": 2})
    bomb = zlib_bomb(inflated)
    plant(r, victim, data=bomb)
    normal, after = then_a_normal_job(queue, tmp_path)

    run_burst(signed, "prlimit", f"--as={ADDRESS_SPACE_BOUND}")

    record = JobRecord(victim, r.hgetall(f"rq:job:{victim}"))
    error = record.error_text() or ""
    assert record.status == "failed" and "PayloadError" in error and reason in error, error
    assert str(signed.max_payload_bytes) in error  # the message names the bound
    assert record.started_at is not None and record.ended_at is not None
    took = (record.ended_at - record.started_at).total_seconds()
    print(f"zlib bomb {inflated} bytes ({len(bomb)} stored): failed after {took * 1000:.1f} ms")
    assert outcome(r, normal)[0] == "finished" and after.exists()


CORRUPTIONS = [
    {"timeout": "99999999999999999999"},  # once crashed the worker: OverflowError in select()
    {"timeout": "abc"},
    {"timeout": "-5"},
    {"retry_intervals": "{"},
    {"retry_intervals": '["x"]'},
    {"retry_intervals": "[1e999]"},
    {"result_ttl": "x", "failure_ttl": "x", "retries_left": "x", "taskq_attempts": "x"},
    {"origin": "../x"},
    {"status": "weird"},
    {"meta": "\x00garbage", "taskq_trace": "{"},
    {"dependency_ids": "zz"},
    {"data": ""},
]


def test_corrupt_job_fields_never_stop_the_worker(settings, r, tmp_path):
    signed = replace(settings, signing_key=SIGNING_KEY)
    queue = RQQueue(r, signed)
    victims = []
    for fields in CORRUPTIONS:
        victims.append(queue.enqueue("add", {"a": 1, "b": 2}))
        plant(r, victims[-1], **fields)
    normal, after = then_a_normal_job(queue, tmp_path)

    worker = run_burst(signed)

    assert "Traceback" not in worker.output
    assert outcome(r, normal)[0] == "finished" and after.exists()
    assert outcome(r, victims[0])[0] == "finished"  # an absurd timeout reads as unset (the default)


def test_the_producer_refuses_a_timeout_no_timer_can_hold(settings, r):
    with pytest.raises(InvalidOptionError, match="at most"):
        RQQueue(r, settings).enqueue("add", {"a": 1, "b": 2}, timeout=10**12)
