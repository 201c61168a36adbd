"""Workflows without Redis: the planner's checks and plan, and the input a worker decodes."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import BaseModel, ConfigDict

from app.config import Settings
from app.infrastructure.queue.errors import InvalidParamsError, PayloadError, WorkflowError
from app.infrastructure.queue.job_params import JobParams
from app.infrastructure.queue.job_paths import JobRegistry
from app.infrastructure.queue.job_spec import JobSpecBuilder
from app.infrastructure.queue.port import JobRequest
from app.infrastructure.queue.serialization import PickleSerializer, SignedSerializer
from app.infrastructure.queue.workflow_input import INPUT_MARK, decode_input, with_input
from app.infrastructure.queue.workflows import Chain, Edge, Planner
from tests.support.jobs import TEST_JOBS


class DoubleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: int = 1
    prev: int


def planner(params=None) -> Planner:
    settings = Settings(extra_jobs=TEST_JOBS)
    registry = JobRegistry(extra=TEST_JOBS, params=params or {})
    return Planner(JobSpecBuilder(settings, registry, PickleSerializer()))


def test_a_chain_is_known_by_its_last_job_and_each_step_waits_on_the_one_before():
    plan = planner().chain(
        Chain(
            [Edge(JobRequest("add", {"a": 1, "b": 1}), "ignore"), JobRequest("double", {})],
            pass_result="prev",
        ),
        0.0,
    )
    first, second = plan.jobs
    assert plan.top == second.spec.job_id and second.spec.depends_on == (first.spec.job_id,)
    assert (second.wants_input, second.dep_policy, second.spec.params["prev"]) == (True, "ignore", INPUT_MARK)
    assert plan.workflows[0]["members"] == [[first.spec.job_id, "ignore"], [second.spec.job_id, "fail"]]


def test_a_group_plan_has_its_callbacks_waiting_and_its_chains_as_members():
    plan = planner().group(
        [JobRequest("add", {"a": 1, "b": 1}), Edge(Chain([JobRequest("add", {"a": 1, "b": 1})]), "continue")],
        {"on_success": JobRequest("echo", {}), "on_failure": None},
        "fail",
        "batch-1",
        "results",
        0.0,
    )
    group = plan.workflows[0]
    assert group["id"] == "batch-1" and set(group["roles"]) == {"on_success"}
    assert group["members"][1][1] == "wf:continue"
    callback = next(job for job in plan.jobs if job.role)
    assert callback.role == "on_success:batch-1" and callback.wants_input and callback.workflow == ""


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.chain(Chain([]), 0.0),
        lambda p: p.chain(Chain(JobRequest("add", {})), 0.0),  # type: ignore[arg-type]
        lambda p: p.chain(Chain([Chain([JobRequest("add", {})])]), 0.0),  # type: ignore[list-item]
        lambda p: p.group(JobRequest("add", {}), {}, "fail", None, None, 0.0),
        lambda p: p.group(["add"], {}, "fail", None, None, 0.0),
        lambda p: p.group([Chain([JobRequest("add", {}, job_id="batch")])], {}, "fail", "batch", None, 0.0),
    ],
    ids=[
        "empty",
        "not-a-list-of-steps",
        "chain-in-chain",
        "not-a-list",
        "not-a-request",
        "group-id-is-a-chains-id",
    ],
)
def test_malformed_workflows_are_refused(call):
    with pytest.raises(WorkflowError):
        call(planner())


def test_the_passed_param_must_be_declared_and_may_be_missing_now():
    declared = {"tests.support.jobs.double": JobParams(DoubleParams)}
    with pytest.raises(InvalidParamsError, match="which the workflow passes"):
        planner(declared).chain(
            Chain([JobRequest("add", {}), JobRequest("double", {})], pass_result="nope"), 0.0
        )
    plan = planner(declared).chain(
        Chain([JobRequest("add", {}), JobRequest("double", {})], pass_result="prev"), 0.0
    )
    assert plan.jobs[1].spec.params == {"prev": INPUT_MARK}
    with pytest.raises(InvalidParamsError, match="'value'"):
        planner(declared).chain(
            Chain([JobRequest("add", {}), JobRequest("double", {"value": "x"})], pass_result="prev"), 0.0
        )
    with pytest.raises(InvalidParamsError, match="passed by the workflow"):
        planner().chain(
            Chain([JobRequest("add", {}), JobRequest("double", {"prev": 1})], pass_result="prev"), 0.0
        )


def test_the_worker_decodes_a_result_a_failure_and_a_group():
    serializer = SignedSerializer(PickleSerializer(), b"k" * 32)
    blob = base64.b64encode(serializer.dumps({"x": 1})).decode()
    result = json.dumps({"kind": "result", "value": blob}).encode()
    assert with_input("j", {"prev": dict(INPUT_MARK), "n": 2}, result, serializer, 10_000) == {
        "prev": {"x": 1},
        "n": 2,
    }
    failed = json.dumps({"kind": "failed", "job_id": "a", "status": "expired"}).encode()
    assert decode_input("j", failed, serializer, 10_000) == {"failed": "a", "status": "expired"}
    group = {"kind": "group", "workflow": "g", "state": "succeeded", "total": 2, "counts": {"finished": 2},
             "results": {"a": blob, "b": ""}, "failures": {}, "truncated": False}  # fmt: skip
    decoded = decode_input("j", json.dumps(group).encode(), serializer, 10_000)
    assert decoded["results"] == {"a": {"x": 1}, "b": None} and decoded["group_id"] == "g"


def test_a_marked_param_without_an_input_gets_none_and_other_params_are_never_touched():
    serializer = PickleSerializer()
    assert with_input("j", {"prev": dict(INPUT_MARK), "n": 1}, None, serializer, 100) == {
        "prev": None,
        "n": 1,
    }
    plain = {"n": {"$taskq": "other"}}
    assert with_input("j", plain, b"{}", serializer, 100) is plain


def test_an_unsigned_or_oversized_input_is_refused():
    serializer = SignedSerializer(PickleSerializer(), b"k" * 32)
    forged = base64.b64encode(PickleSerializer.dumps({"x": 1})).decode()
    with pytest.raises(PayloadError, match="job 'j': workflow input: data is not signed"):
        decode_input("j", json.dumps({"kind": "result", "value": forged}).encode(), serializer, 10_000)
    with pytest.raises(PayloadError, match="over the bound"):
        decode_input("j", b"x" * 101, serializer, 100)
