"""The Lua scripts, built from their sources in `lua/` and the job schema (no Redis here).

A script names the schema and `lua.py` turns each name into its value before Redis sees it,
so the scripts cost nothing at run time for being named:

| In a script | Becomes |
| :--- | :--- |
| `S.queued`, `E.retry`, `F.status`, `W.state`, `WS.busy` | a status, an ending, a field, a worker state |
| `RESULT.failed`, `RF.exc_string`, `SF.last_tick` | rq's result type, a field of a result, of a schedule |
| `WF.state`, `WFS.open` | a field of a workflow's hash, a workflow state |
| `LIST.claim_fields` | a list of names, as a table |
| `K.job(id)`, `K.suspended` | a key function (emitted once), or a constant key, quoted |
| `IN.live(st)`, `CAN.claim(st)` | a predicate on a status group or a transition's sources |
| `MOVE.claim(key, S.started, ...)` | HSET status (checked against the transition's targets) + fields |
| `A.job_id`, `A.queues`, `A.jobs` | `ARGV[n]` / `KEYS[n]` by the script's layout, or its tail |

A name the schema does not define raises `SchemaError` when the script is built (at start).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from app.infrastructure.queue.schema import (
    FIELDS,
    GROUPS,
    JOB_RECORD,
    KEYS,
    LAYOUTS,
    LISTS,
    RESULT_FIELDS,
    RESULT_TYPES,
    SCHEDULE_FIELDS,
    TRANSITIONS,
    WORKER_FIELDS,
    WORKER_STATES,
    WORKFLOW_FIELDS,
    WORKFLOW_STATES,
    Ending,
    JobStatus,
    Layout,
    SchemaError,
)

NAMES = tuple(LAYOUTS)
#: The shared functions; a script gets those it calls (directly or through another), no more.
_LIBRARIES = ("prelude", "lib_limits", "lib_workflows", "lib_jobs", "lib_worker", "lib_failed")
_FUNCTION = re.compile(r"^local function (\w+)\(", re.MULTILINE)

_CONSTANTS = {
    "S": {status.name.lower(): status.value for status in JobStatus},
    "E": {ending.name.lower(): ending.value for ending in Ending},
    "F": dict(FIELDS),
    "W": dict(WORKER_FIELDS),
    "WS": dict(WORKER_STATES),
    "RESULT": {name: str(number) for name, number in RESULT_TYPES.items()},
    "RF": dict(RESULT_FIELDS),
    "SF": dict(SCHEDULE_FIELDS),
    "WF": dict(WORKFLOW_FIELDS),
    "WFS": dict(WORKFLOW_STATES),
}
_NAME = re.compile(r"\b(S|E|F|W|WS|SF|WF|WFS|RESULT|RF|LIST|K|IN|CAN|MOVE|A)\.([a-z_][a-z0-9_]*)\b(\()?")


@cache
def source(name: str) -> str:
    """The full source of script `name` (one of `NAMES`), every schema name expanded.

    Raises:
        KeyError: no such script.
        SchemaError: the script names something the schema does not define.
    """
    if name not in LAYOUTS:
        raise KeyError(name)
    body = _read(name)
    expanded, used = _expand(name, _needed(body) + body, LAYOUTS[name])
    return "#!lua\n" + _header(used, LAYOUTS[name]) + expanded


def _read(part: str) -> str:
    return (resources.files("app.infrastructure.queue") / "lua" / f"{part}.lua").read_text()


@cache
def _functions() -> dict[str, str]:
    """Each shared function's source (with the comment above it), by name, in library order."""
    chunks: dict[str, str] = {}
    for library in _LIBRARIES:
        text = _read(library)
        starts = [m.start() for m in _FUNCTION.finditer(text)]
        for start, end in zip(starts, [*starts[1:], len(text)], strict=True):
            chunk = text[start:end]
            head = chunk[: chunk.rfind("\nend\n") + 5] if "\nend\n" in chunk else chunk
            comment = text[:start].rstrip("\n").rpartition("\n\n")[2] if start else ""
            name = _FUNCTION.match(chunk).group(1)  # type: ignore[union-attr]
            chunks[name] = (comment + "\n" if comment.startswith("--") else "") + head + "\n"
    return chunks


def shared_function(name: str) -> str:
    """The source of one shared function as written (schema names not expanded), for tests."""
    return _functions()[name]


def _needed(body: str) -> str:
    """The shared functions `body` calls, and those they call, in their libraries' order."""
    functions = _functions()
    wanted: set[str] = set()
    frontier = body
    while True:
        found = {name for name in functions if name not in wanted and re.search(rf"\b{name}\(", frontier)}
        if not found:
            break
        wanted |= found
        frontier = "".join(functions[name] for name in found)
    return "".join(chunk for name, chunk in functions.items() if name in wanted)


def _expand(script: str, body: str, layout: Layout) -> tuple[str, set[tuple[str, str]]]:
    used: set[tuple[str, str]] = set()

    def replace(match: re.Match[str]) -> str:
        kind, name, call = match.group(1), match.group(2), match.group(3) or ""
        try:
            return _one(kind, name, call, layout, used)
        except KeyError:
            raise SchemaError(f"lua script {script!r}: {kind}.{name} is not in the schema") from None

    return _NAME.sub(replace, body), used


def _one(kind: str, name: str, call: str, layout: Layout, used: set[tuple[str, str]]) -> str:
    if kind in _CONSTANTS:
        return repr_lua(_CONSTANTS[kind][name]) + call
    if kind == "LIST":
        return "{" + ", ".join(repr_lua(value) for value in LISTS[name]) + "}" + call
    if kind == "A":
        return _argument(name, layout, used) + call
    if kind == "K":
        template = KEYS[name]
        if not call:
            if "{}" in template:
                raise KeyError(name)  # a key of an id or a queue is called: K.job(id)
            return repr_lua(template)
    elif kind == "IN":
        GROUPS[name]
    else:
        TRANSITIONS[name]
    used.add((kind, name))
    return f"{kind.lower()}_{name}{call}"


def _argument(name: str, layout: Layout, used: set[tuple[str, str]]) -> str:
    if name in layout.keys:
        return f"KEYS[{layout.keys.index(name) + 1}]"
    if name in layout.args:
        return f"ARGV[{layout.args.index(name) + 1}]"
    if name != layout.tail:
        raise KeyError(name)
    used.add(("A", name))
    return f"A_{name}"


def _header(used: set[tuple[str, str]], layout: Layout) -> str:
    lines = ["-- generated from app/infrastructure/queue/schema.py"]
    for kind, name in sorted(used):
        if kind == "K":
            head, _, tail = KEYS[name].partition("{}")
            suffix = f" .. {repr_lua(tail)}" if tail else ""
            lines.append(f"local function k_{name}(x) return {repr_lua(head)} .. x{suffix} end")
        elif kind == "IN":
            lines.append(_predicate(f"in_{name}", sorted(s.value for s in GROUPS[name])))
        elif kind == "CAN":
            lines.append(_predicate(f"can_{name}", sorted(TRANSITIONS[name].sources)))
        elif kind == "MOVE":
            lines.append(_mover(name))
    lines += _tail(layout) if ("A", layout.tail or "") in used else []
    return "\n".join(lines) + "\n"


def _predicate(function: str, values: list[str]) -> str:
    test = " or ".join(f"s == {repr_lua(v)}" for v in values)
    return f"local function {function}(s) s = s or '' return {test} end"


def _mover(transition: str) -> str:
    targets = " or ".join(f"to == {repr_lua(s.value)}" for s in sorted(TRANSITIONS[transition].targets))
    return (
        f"local function move_{transition}(key, to, ...)\n"
        f"  if not ({targets}) then error('taskq: {transition} cannot end in ' .. tostring(to)) end\n"
        f"  redis.call('HSET', key, {repr_lua(FIELDS['status'])}, to, ...)\nend"
    )


def _tail(layout: Layout) -> list[str]:
    """The reader of the layout's tail: values, one job record, `count` records, or `count`
    (tick, record) pairs; as the local `A_<tail>`."""
    first = len(layout.args) + 1
    if layout.tail not in ("job", "jobs", "ticks"):  # a few values (queues, counts, hash pairs): one C call
        return [f"local A_{layout.tail} = {{unpack(ARGV, {first})}}"]
    lines = _record_reader()
    if layout.tail == "job":
        return [*lines, f"local A_job = read_job({first})"]
    count = f"ARGV[{layout.args.index('count') + 1}]"
    if layout.tail == "ticks":
        read = "local tick = tonumber(ARGV[pos]) A_ticks[i], pos = read_job(pos + 1) A_ticks[i].tick = tick"
        return [
            *lines,
            "local A_ticks = {}",
            f"do local pos = {first} for i = 1, tonumber({count}) do {read} end end",
        ]
    return [
        *lines,
        "local A_jobs = {}",
        f"do local pos = {first} for i = 1, tonumber({count}) do A_jobs[i], pos = read_job(pos) end end",
    ]


def _record_reader() -> list[str]:
    """`read_job(pos)`: one JOB_RECORD from ARGV, with `fields` (the hash pairs it fills) and `deps`."""
    count = len(JOB_RECORD)
    names = ", ".join(f"{name} = ARGV[pos + {i}]" for i, (name, _) in enumerate(JOB_RECORD))
    lines = [
        "local function put_field(f, name, value)",
        "  if value ~= '' then f[#f + 1] = name f[#f + 1] = value end",
        "end",
        "local function read_job(pos)",
        f"  local job = {{{names}, deps = {{}}}}",
        "  local f = {}",
    ]
    lines += [f"  put_field(f, {repr_lua(t)}, job.{name})" for name, targets in JOB_RECORD for t in targets]
    lines += [
        "  job.fields = f",
        f"  local n = tonumber(ARGV[pos + {count}])",
        f"  for i = 1, n do job.deps[i] = ARGV[pos + {count} + i] end",
        f"  return job, pos + {count + 1} + n",
        "end",
    ]
    return lines


def repr_lua(value: str) -> str:
    """A Lua string literal (our names are plain ASCII; anything else is refused)."""
    if not re.fullmatch(r"[A-Za-z0-9_:.\-]*", value):
        raise SchemaError(f"not a plain name: {value!r}")
    return f"'{value}'"
