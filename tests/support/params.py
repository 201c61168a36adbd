"""Declared params for the test jobs (`tests/support/jobs.py`), as a job_paths.py would declare them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict


class AddParams(BaseModel):
    """`add(a, b)`, declared right."""

    model_config = ConfigDict(extra="forbid")

    a: int
    b: int


class WrongAddParams(BaseModel):
    """`add(a, b)`, declared wrong: `c` is not a parameter, and `b` is missing."""

    a: int
    c: int


class LooseTouchParams(BaseModel):
    """`touch(path)`, declared wrong: `path` is required by the function, optional here."""

    path: str = "/tmp/never"


@dataclass
class EchoParams:
    """A dataclass declaration: `echo(**params)` takes anything, so these fit."""

    name: str
    count: int = 1
    tags: list[str] = field(default_factory=list)
