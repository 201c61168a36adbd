"""The input a workflow hands a job when it is due: the previous job's result (a chain), or a
group's results (a callback). Both sides meet here: the producer stores `INPUT_MARK` as the
param's value (signed with the rest of the call), the worker replaces it with the decoded input.

The input is JSON that the scripts wrote (`taskq_input`); every result in it is a serialized value
as rq stores results (base64), loaded by the serializer, so a signed value is checked before it
is unpickled. The counts and ids beside the results are Redis's word, as a job's status is.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from app.infrastructure.queue.errors import PayloadError, SignatureError
from app.infrastructure.queue.serialization import Serializer

#: What a workflow's job carries in its params, signed, where its input goes.
INPUT_MARK: Mapping[str, str] = {"$taskq": "input"}


def is_mark(value: object) -> bool:
    return type(value) is dict and len(value) == 1 and value.get("$taskq") == "input"


def with_input(
    job_id: str, kwargs: dict[str, Any], raw: bytes | None, serializer: Serializer, limit: int
) -> dict[str, Any]:
    """`kwargs` with the marked param (if any) replaced by the decoded input; None without one
    (a job released by the reaper's settle pass after its predecessor ended outside taskq).

    Raises:
        PayloadError: the input is larger than `limit`, not the JSON the scripts write, or a value
            in it does not load (its signature, say).
    """
    names = [name for name, value in kwargs.items() if is_mark(value)]
    if not names:
        return kwargs
    value = None if raw is None else decode_input(job_id, raw, serializer, limit)
    return {**kwargs, **dict.fromkeys(names, value)}


def decode_input(job_id: str, raw: bytes, serializer: Serializer, limit: int) -> Any:
    """The Python value of an input document; see the queue README for each kind.

    Raises:
        PayloadError: as `with_input`.
    """
    if len(raw) > limit:
        raise PayloadError(job_id, f"workflow input is {len(raw)} bytes, over the bound of {limit}")
    try:
        document = json.loads(raw)
        kind = document["kind"]
        if kind == "result":
            return _load(serializer, document.get("value"))
        if kind == "failed":
            return {"failed": str(document["job_id"]), "status": str(document["status"])}
        if kind == "group":
            return _group(document, serializer)
    except SignatureError as exc:
        raise SignatureError(job_id, f"workflow input: {str(exc).partition(': ')[2] or exc}") from exc
    except Exception as exc:
        raise PayloadError(job_id, f"workflow input does not load: {type(exc).__name__}: {exc}") from exc
    raise PayloadError(job_id, f"workflow input of unknown kind {kind!r}")


def _group(document: dict[str, Any], serializer: Serializer) -> dict[str, Any]:
    results = document.get("results") or {}
    failures = document.get("failures") or {}
    return {
        "group_id": str(document["workflow"]),
        "state": str(document["state"]),
        "total": int(document["total"]),
        "counts": {str(k): int(v) for k, v in (document.get("counts") or {}).items()},
        "results": {str(job_id): _load(serializer, blob) for job_id, blob in results.items()},
        "failures": {str(job_id): str(status) for job_id, status in failures.items()},
        "truncated": bool(document.get("truncated")),
        "first_failure": document.get("first_failure"),
    }


def _load(serializer: Serializer, blob: object) -> Any:
    if not blob:
        return None
    if not isinstance(blob, str):
        raise TypeError(f"a result is {type(blob).__name__}, not base64 text")
    return serializer.loads(base64.b64decode(blob))
