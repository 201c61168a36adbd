"""The Lua scripts that write rq's data model atomically, as source text (no Redis here).

Each script is `#!lua` (so Redis refuses it up front when out of memory, instead of failing
halfway), then the shared prelude, then its body.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

NAMES = ("enqueue", "dequeue", "finish", "fail", "reap", "cancel", "requeue", "purge")


@cache
def source(name: str) -> str:
    """The full source of script `name` (one of `NAMES`)."""
    if name not in NAMES:
        raise KeyError(name)
    folder = resources.files("app.infrastructure.queue") / "lua"
    prelude = (folder / "prelude.lua").read_text()
    body = (folder / f"{name}.lua").read_text()
    return f"#!lua\n{prelude}\n{body}"
