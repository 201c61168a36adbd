"""Declared params: how entries carry a model and a version, the strict check at enqueue, the CLI's
coercion by type, and the start-time check of a function's signature against its declaration."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from pydantic import BaseModel, ConfigDict

from app.cli.jobs import parse_params
from app.infrastructure.queue.errors import InvalidParamsError
from app.infrastructure.queue.job_params import JobParams, ParamsSchema
from app.infrastructure.queue.job_paths import INGEST_DOC_JOB, PARAMS, IngestDocParams, JobRegistry
from app.worker.preflight import check_params, signature_problems
from tests.support.jobs import TEST_JOBS
from tests.support.params import AddParams, EchoParams, LooseTouchParams, WrongAddParams


class Typed(BaseModel):
    n: int
    ratio: float = 1.0
    flag: bool = False
    name: str = ""


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    a: int


def test_ingest_doc_declares_doc_id_str_at_version_1():
    assert PARAMS[INGEST_DOC_JOB] == JobParams(IngestDocParams)
    registry = JobRegistry()
    declared = registry.declared(INGEST_DOC_JOB)
    assert declared is not None and (declared.names, declared.required) == ({"doc_id"}, {"doc_id"})
    assert registry.version(INGEST_DOC_JOB) == 1
    registry.check_params(INGEST_DOC_JOB, {"doc_id": "123"})


@pytest.mark.parametrize("bad", [0, -1, True, "2", 1.5])
def test_a_version_is_an_int_from_1(bad):
    with pytest.raises(ValueError, match="params version"):
        JobParams(version=bad)


def test_a_model_is_a_pydantic_model_or_a_dataclass():
    with pytest.raises(TypeError, match="pydantic model or a dataclass"):
        JobParams(dict)
    assert ParamsSchema.of(EchoParams).required == {"name"}
    assert ParamsSchema.of(EchoParams).names == {"name", "count", "tags"}


def test_params_may_only_be_declared_for_registered_jobs():
    with pytest.raises(ValueError, match="not a registered job path"):
        JobRegistry(params={"tests.support.jobs.add": JobParams(AddParams)})
    registry = JobRegistry(extra=TEST_JOBS, params={"tests.support.jobs.add": JobParams(version=3)})
    assert (
        registry.version("tests.support.jobs.add") == 3
        and registry.declared("tests.support.jobs.add") is None
    )
    registry.check_params("tests.support.jobs.add", {"anything": object()})  # no model: shape only


@pytest.mark.parametrize(
    ("params", "key", "message"),
    [
        ({}, "n", "field 'n' is required"),
        ({"n": 1, "m": 2}, "m", "field 'm' is not declared in Typed (declared: flag, n, name, ratio)"),
        ({"n": "5"}, "n", "field 'n': Input should be a valid integer, got str '5'"),
        ({"n": True}, "n", "field 'n': Input should be a valid integer, got bool True"),
        ({"n": 1, "name": 7}, "name", "field 'name': Input should be a valid string, got int 7"),
        ({"n": 1, "flag": "yes"}, "flag", "field 'flag': Input should be a valid boolean"),
    ],
)
def test_the_check_is_strict_and_names_the_field(params, key, message):
    with pytest.raises(InvalidParamsError) as caught:
        ParamsSchema.of(Typed).check("pkg.job", params)
    assert caught.value.key == key and caught.value.job_name == "pkg.job"
    assert str(caught.value).startswith(f"params of 'pkg.job': {message}"), str(caught.value)


def test_what_fits_passes_and_a_model_that_allows_extra_keeps_them():
    ParamsSchema.of(Typed).check("j", {"n": 1, "ratio": 2, "flag": True})  # an int is a fine float
    ParamsSchema.of(Open).check("j", {"a": 1, "more": "kept"})


def test_the_cli_coerces_text_to_the_declared_types_and_leaves_json_alone():
    declared = ParamsSchema.of(Typed)
    got = parse_params(("n=5", "ratio=0.5", "flag=true", "name=123", "extra=1"), declared)
    assert got == {"n": 5, "ratio": 0.5, "flag": True, "name": "123", "extra": "1"}
    assert parse_params(("n=five",), declared) == {"n": "five"}  # left for the check to name
    assert parse_params(("name:=123",), declared) == {"name": 123}  # := is JSON, never coerced
    assert parse_params(("doc_id=123",), JobRegistry().declared(INGEST_DOC_JOB)) == {"doc_id": "123"}
    assert parse_params(("n=3", "m:=3", "s=a=b", "e=")) == {"n": "3", "m": 3, "s": "a=b", "e": ""}


def add(a: int, b: int) -> int:
    return a + b


def anything(**params: object) -> None:
    pass


def positional(a: int, /, b: int) -> None:
    pass


@dataclass
class AB:
    a: int
    b: int = 0


@pytest.mark.parametrize(
    ("func", "model", "problems"),
    [
        (add, AddParams, []),
        (add, WrongAddParams, ["it takes no parameter 'c'", "it requires 'b', which is not declared"]),
        (add, AB, ["it requires 'b', which is declared optional"]),
        (anything, WrongAddParams, []),
        (positional, AddParams, ["its parameter 'a' is positional-only"]),
    ],
)
def test_a_signature_is_checked_against_the_declaration(func, model, problems):
    assert signature_problems(func, ParamsSchema.of(model)) == problems


def test_check_params_gives_one_line_per_job_that_disagrees():
    from tests.support import jobs

    extra = [("add", "tests.support.jobs.add"), ("touch", "tests.support.jobs.touch")]
    params = {
        "tests.support.jobs.add": JobParams(WrongAddParams),
        "tests.support.jobs.touch": JobParams(LooseTouchParams),
    }
    registry = JobRegistry(extra=extra, params={**PARAMS, **params})
    functions = {"tests.support.jobs.add": jobs.add, "tests.support.jobs.touch": jobs.touch}
    lines = check_params(registry, functions)
    assert len(lines) == 2
    assert lines[0].startswith("job 'add': tests.support.jobs.add and WrongAddParams disagree: it takes no")
    assert lines[1] == (
        "job 'touch': tests.support.jobs.touch and LooseTouchParams disagree: "
        "it requires 'path', which is declared optional"
    )
