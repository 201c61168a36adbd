"""The ACLs of SECURITY.md, on a private redis-server: enough for the whole flow, and no more."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from app.config import Settings
from app.infrastructure.queue.errors import QueuePermissionError
from app.infrastructure.queue.port import JobRequest, JobStatus
from app.infrastructure.queue.rq_queue import RQQueue
from app.infrastructure.queue.workflows import Chain
from app.infrastructure.redis.connection import Guard, connect
from chaos.servers import PrivateRedis
from tests.e2e.conftest import TASKQ, cli_env
from tests.support.jobs import LATER_JOB, TEST_JOBS
from tests.support.processes import WorkerProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SIGNING_KEY = b"acl-test-signing-key-0123456789"
PASSWORDS = {role: f"{role}-Pw-{i}x7q" for i, role in enumerate(("producer", "worker", "operator"))}


def documented_acl() -> str:
    """The ```acl block of SECURITY.md, with a password per user: the test runs what the doc says."""
    block = re.search(r"```acl\n(.*?)```", (ROOT / "SECURITY.md").read_text(), re.DOTALL)
    assert block, "SECURITY.md has no ```acl block"
    text = block.group(1)
    for role, password in PASSWORDS.items():
        text = text.replace(f">{role.upper()}-PASSWORD", f">{password}")
    assert "-PASSWORD" not in text
    return text


#: A test-only user beside the documented ones, to ask the server's ACL engine questions with.
ADMIN_PASSWORD = "admin-Pw-9z"
ADMIN = f"user admin on >{ADMIN_PASSWORD} ~* &* +@all\n"


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateRedis]:
    with PrivateRedis(acl=documented_acl() + ADMIN) as private:
        yield private


def as_role(settings: Settings, server: PrivateRedis, role: str) -> Settings:
    url = server.url_for(role, PASSWORDS[role])
    return replace(settings, redis_url=url, signing_key=SIGNING_KEY, redis_retry_seconds=0.3)


def taskq(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TASKQ), *args], cwd=ROOT, env=cli_env(settings), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "operation",
    [
        lambda c: c.config_get("requirepass"),
        lambda c: c.get("rq:job:x"),  # GET is not a command producers need
        lambda c: c.hgetall("session:42"),  # a command it has, on a key outside rq:* / taskq:*
        lambda c: c.hset("billing:1", "owner", "me"),
        lambda c: c.keys("*"),
        lambda c: c.eval("return redis.call('SET', 'other:key', 1)", 0),
        lambda c: c.evalsha(c.script_load("return redis.call('HSET', 'other:key', 'f', 1)"), 0),
        lambda c: c.publish("other-channel", "x"),
    ],
    ids=["config-get", "get", "foreign-key-read", "foreign-key-write", "keys",
         "eval", "script-foreign-key", "publish-foreign-channel"],
)  # fmt: skip
def test_the_producer_cannot_step_outside_its_keys_and_commands(server, settings, operation):
    client = connect(as_role(settings, server, "producer"))
    try:
        with pytest.raises(QueuePermissionError) as caught:
            Guard(client, 0.3).call(lambda: operation(client))
        assert isinstance(caught.value.__cause__, redis.exceptions.NoPermissionError | redis.ResponseError)
        assert PASSWORDS["producer"] not in str(caught.value)
    finally:
        client.close()


@pytest.mark.parametrize("command", ["FLUSHALL", "FLUSHDB"])
@pytest.mark.parametrize("role", ["producer", "worker", "operator"])
def test_no_documented_user_may_flush(server, role, command):
    """Asked with ACL DRYRUN, so that no flush is ever sent, even to this private server."""
    admin = redis.Redis.from_url(server.url_for("admin", ADMIN_PASSWORD))
    try:
        verdict = admin.execute_command("ACL", "DRYRUN", role, command)
        assert admin.execute_command("ACL", "DRYRUN", "admin", command) == b"OK"  # the probe works
    finally:
        admin.close()
    assert b"no permissions" in verdict.lower() and command.lower().encode() in verdict.lower(), verdict


def test_the_whole_flow_runs_with_the_documented_users(server, settings, tmp_path):
    producer = as_role(settings, server, "producer")
    queue = RQQueue(connect(producer), replace(producer, extra_jobs=(*TEST_JOBS, LATER_JOB)))
    ok = queue.enqueue("add", {"a": 2, "b": 3})
    failing = queue.enqueue("fail_always", {"message": "expected"})
    later = queue.enqueue("added_later", {"value": "x"})  # the worker does not know it: a hand-back
    with WorkerProcess(as_role(settings, server, "worker")) as worker:
        assert queue.wait(ok, timeout=20).result == 5
        assert queue.wait(failing, timeout=20).status is JobStatus.FAILED
        wait_until(lambda: "handed back" in (queue.get(later).error or ""), timeout=20, what="a hand-back")
        assert queue.enqueue("add", {"a": 1, "b": 1}, require_worker=True)
    operator = replace(
        as_role(settings, server, "operator"), limits="add=concurrency:2;concurrency_per_key:1"
    )
    for args in (
        ("status", ok),
        ("info",),
        ("failed", "list"),
        ("failed", "requeue", failing),
        ("jobs",),
        ("pause", "low"),
        ("resume", "low"),
        ("schedules",),
    ):
        run = taskq(operator, *args)
        assert run.returncode == 0, (args, run.stderr)
        assert PASSWORDS["operator"] not in run.stdout + run.stderr
    assert ok in taskq(operator, "status", ok).stdout
    for secret in (*PASSWORDS.values(), SIGNING_KEY.decode()):
        assert secret not in worker.output


def test_workflows_run_with_the_documented_users(server, settings):
    """A group of jobs and a chain, a member canceled by the producer and one by the operator, the
    callbacks, the sweep and `taskq group`: every command their scripts call is in the ACLs."""
    producer = as_role(settings, server, "producer")
    queue = RQQueue(connect(producer), replace(producer, extra_jobs=TEST_JOBS))
    chain = Chain([JobRequest("add", {"a": 1, "b": 2}), JobRequest("double", {})], pass_result="prev")
    members = [JobRequest("add", {"a": 1, "b": 1}, job_id=f"acl-{i}") for i in range(3)]
    gid = queue.group([*members, chain], policy="continue", on_success=JobRequest("echo", {}))
    queue.cancel("acl-0")
    other = queue.group(
        [JobRequest("add", {"a": 1, "b": 1}, job_id="acl-x")], on_failure=JobRequest("echo", {})
    )
    operator = as_role(settings, server, "operator")
    assert taskq(operator, "cancel", "acl-x").returncode == 0
    with WorkerProcess(as_role(settings, server, "worker"), env={"LOG_LEVEL": "WARNING"}):
        view = queue.wait_workflow(gid, timeout=20)
        assert queue.wait(view.callbacks["on_success"][0], timeout=20).status is JobStatus.FINISHED
        assert (
            queue.wait(queue.workflow(other).callbacks["on_failure"][0], timeout=20).status
            is JobStatus.FINISHED
        )
    assert (view.state, view.finished, view.canceled) == ("succeeded", 3, 1)
    run = taskq(operator, "group", gid, "--json")
    assert run.returncode == 0, run.stderr


def test_a_worker_with_the_producer_user_exits_with_one_clear_line(server, settings):
    worker = WorkerProcess(as_role(settings, server, "producer"), "--burst").start(wait_ready=False)
    assert worker.wait(timeout=30) == 1
    lines = worker.output.strip().splitlines()
    assert "refused access" in lines[-1] and "no permissions" in lines[-1], worker.output
    assert "Traceback" not in worker.output and PASSWORDS["producer"] not in worker.output


def test_a_wrong_password_is_one_line_from_the_cli_and_the_worker_never_the_password(server, settings):
    wrong = replace(settings, redis_url=server.url_for("worker", "Wrong-Secret-77"), signing_key=SIGNING_KEY)
    run = taskq(wrong, "info")
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "refused access" in run.stderr, run.stderr
    worker = WorkerProcess(wrong, "--burst").start(wait_ready=False)
    assert worker.wait(timeout=30) == 1
    assert "refused access" in worker.output and "Traceback" not in worker.output
    for output in (run.stderr, worker.output):
        assert "Wrong-Secret-77" not in output and SIGNING_KEY.decode() not in output
        assert "redis://worker:***@" in output or "redis://worker@" in output
