"""The Lua scripts that write rq's data model atomically, as source text (no Redis here).

Each script is `#!lua` (so Redis refuses it up front when out of memory, instead of failing
halfway), then the shared prelude, then its body.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

NAMES = ("enqueue", "enqueue_one", "dequeue", "finish", "fail", "reap", "cancel", "requeue", "purge")

#: The libraries each script needs after the core prelude; the hot paths load no more than they use.
_LIBRARIES = {
    "enqueue_one": (),
    "enqueue": ("lib_jobs",),
    "cancel": ("lib_jobs",),
    "fail": ("lib_jobs",),
    "reap": ("lib_jobs",),
    "dequeue": ("lib_jobs", "lib_worker"),
    "finish": ("lib_jobs", "lib_worker"),
    "requeue": (),
    "purge": (),
}


@cache
def source(name: str) -> str:
    """The full source of script `name` (one of `NAMES`)."""
    if name not in NAMES:
        raise KeyError(name)
    folder = resources.files("app.infrastructure.queue") / "lua"
    parts = ["prelude", *_LIBRARIES[name], name]
    return "#!lua\n" + "\n".join((folder / f"{part}.lua").read_text() for part in parts)
