"""The Lua scripts that write rq's data model atomically, as source text (no Redis here).

Each script is `#!lua` (so Redis refuses it up front when out of memory, instead of failing
halfway), then the shared prelude, then its body.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

NAMES = ("enqueue", "enqueue_one", "dequeue", "finish", "fail", "reap", "cancel")
#: Scripts that also need the worker library (claim, schedule promotion).
_WORKER = frozenset({"dequeue", "finish"})


@cache
def source(name: str) -> str:
    """The full source of script `name` (one of `NAMES`)."""
    if name not in NAMES:
        raise KeyError(name)
    folder = resources.files("app.infrastructure.queue") / "lua"
    parts = [(folder / "prelude.lua").read_text()]
    if name in _WORKER:
        parts.append((folder / "lib_worker.lua").read_text())
    parts.append((folder / f"{name}.lua").read_text())
    return "#!lua\n" + "\n".join(parts)
