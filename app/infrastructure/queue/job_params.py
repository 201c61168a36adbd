"""Declared job params: a pydantic model (or a dataclass) and a version per registry entry.

The producer checks a job's params against its declaration at enqueue, without importing job
code; the worker checks at start that each function takes what its declaration says
(`app/worker/preflight.py`). A job without a declaration is checked for shape only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import reprlib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from app.infrastructure.queue.errors import InvalidParamsError

_short = reprlib.Repr()
_short.maxstring = 40
_short.maxother = 40


@dataclass(frozen=True)
class JobParams:
    """What a registry entry declares: its params `model` (None: any params) and their `version`.

    Bump `version` when the params change in a way old workers cannot take: a job records the
    version it was enqueued with, and a worker whose entry has another one hands the job back
    for a worker that knows it, instead of running it.
    """

    model: type | None = None
    version: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise ValueError(f"params version must be an int >= 1, not {self.version!r}")
        if self.model is not None:
            ParamsSchema.of(self.model)  # a model that cannot be compiled fails here, at import


class ParamsSchema:
    """A declaration compiled once: its fields, the required ones, and a strict validator."""

    def __init__(self, declared: type) -> None:
        model = _as_model(declared)
        self.title = declared.__name__
        self.fields: Mapping[str, Any] = {name: info.annotation for name, info in model.model_fields.items()}
        self.names = frozenset(self.fields)
        self.required = frozenset(name for name, info in model.model_fields.items() if info.is_required())
        self.extra_allowed = model.model_config.get("extra") == "allow"
        self._validate: Callable[..., Any] = model.__pydantic_validator__.validate_python

    @staticmethod
    @functools.cache
    def of(declared: type) -> ParamsSchema:
        return ParamsSchema(declared)

    def check(self, job_name: str, params: Mapping[str, Any], pending: str | None = None) -> None:
        """Validate `params` strictly (no coercion: `"5"` is not an int). `pending` names a field a
        workflow fills in when the job is due (the previous result): it must be declared, and may
        be missing now.

        Raises:
            InvalidParamsError: a field is not declared, is missing or has the wrong type; it is named.
        """
        declared = ", ".join(sorted(self.names)) or "none"
        if not self.extra_allowed and not self.names.issuperset(params):
            name = min(set(params) - self.names)
            raise InvalidParamsError(
                job_name, f"field {name!r} is not declared in {self.title} (declared: {declared})", name
            )
        if pending is not None and not self.extra_allowed and pending not in self.names:
            reason = f"field {pending!r}, which the workflow passes, is not declared in {self.title}"
            raise InvalidParamsError(job_name, f"{reason} (declared: {declared})", pending)
        try:
            self._validate(params, strict=True)
        except ValidationError as exc:
            errors = [
                error
                for error in exc.errors(include_url=False)
                if not (pending is not None and error["loc"][:1] == (pending,) and error["type"] == "missing")
            ]
            if errors:
                field, reason = _first_error(errors[0])
                raise InvalidParamsError(job_name, reason, field) from exc

    def coerce(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Text values (from a command line) turned into their declared types where they parse.

        `"123"` stays a str for a `str` field and becomes 123 for an `int` one; what does not
        parse is left as it is, for `check` to name.
        """
        out = dict(raw)
        for name, value in raw.items():
            if name in self.fields and isinstance(value, str):
                with contextlib.suppress(ValidationError):
                    out[name] = _adapter(self.fields[name]).validate_python(value)
        return out


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _first_error(error: Any) -> tuple[str | None, str]:
    loc = error["loc"]
    if not loc:
        return None, error["msg"]
    field = str(loc[0])
    if error["type"] == "missing":
        return field, f"field {field!r} is required"
    where = repr(field) + "".join(f"[{part!r}]" for part in loc[1:])
    value = error.get("input")
    return field, f"field {where}: {error['msg']}, got {type(value).__name__} {_short.repr(value)}"


def _as_model(declared: type) -> type[BaseModel]:
    """A pydantic model for the declaration: itself, or one made from a dataclass's fields."""
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        return declared
    if not (isinstance(declared, type) and dataclasses.is_dataclass(declared)):
        raise TypeError(f"params must be declared as a pydantic model or a dataclass, not {declared!r}")
    hints = typing.get_type_hints(declared)
    fields: dict[str, Any] = {}
    for item in dataclasses.fields(declared):
        if not item.init:
            continue
        if item.default is not dataclasses.MISSING:
            default: Any = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = pydantic.Field(default_factory=item.default_factory)
        else:
            default = ...
        fields[item.name] = (hints[item.name], default)
    config = ConfigDict(extra="forbid")
    return pydantic.create_model(declared.__name__, __config__=config, **fields)
