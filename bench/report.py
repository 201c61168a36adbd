"""Medians over rounds, ratios against each row's baseline in the same round, targets, table, JSON.

Every ratio is "times better than the baseline": ours / baseline for jobs/s, baseline / ours for
latency in ms, so > 1 always means ahead. Ratios are the median of the per-round ratios: each
round runs every contender once, so a noisy minute hits a contender and its baseline alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import Result, median

#: (row, contender) -> the (row, contender) it is compared with; None: it is the baseline.
BASELINES: dict[str, str] = {
    "taskq enqueue": "rq Queue.enqueue",
    "taskq enqueue (signed)": "rq Queue.enqueue",
    "taskq enqueue (typed params)": "taskq enqueue",  # validation on, against off (issue 15)
    "redis RPUSH": "rq Queue.enqueue",
    "taskq enqueue_many": "rq enqueue_many",
    "taskq enqueue_many (signed)": "rq enqueue_many",
    "pipelined RPUSH": "rq enqueue_many",
    "taskq fork": "rq Worker",
    "taskq pool": "rq Worker",  # a process of its own per job, like rq's fork Worker
    "taskq inline": "rq SimpleWorker",
    "taskq AsyncRQQueue.enqueue": "arq enqueue_job",  # issue 13: the asyncio producer against arq's
    "taskq --concurrency 100": "arq",
}
#: contender -> a second taskq line of the same row it is compared with (ratio kind "inline").
SIBLINGS = {"taskq pool": "taskq inline"}
#: Rows whose figure is a time or a size (lower is better).
LOWER_IS_BETTER = {"latency", "job bytes"}
#: The raw Redis floor each row is compared with, where there is one.
FLOOR = {
    "enqueue": ("enqueue", "redis RPUSH"),
    "bulk": ("bulk", "pipelined RPUSH"),
    "peers enqueue": ("enqueue", "redis RPUSH"),
}
#: Where "the fastest peer" is found for each row: (row of the peers, better = max or min).
PEER_ROW = {
    "enqueue": "peers enqueue",
    "drain 1p": "peers drain",
    "latency": "latency",
    "io drain": "io drain",
    "async enqueue": "async enqueue",
}
PEERS = ("huey", "dramatiq")
#: The peers of the asyncio rows (issue 13), by row; the other rows' are PEERS.
ROW_PEERS = {
    "io drain": ("arq", "saq", "taskiq"),
    "async enqueue": ("arq enqueue_job", "saq enqueue", "taskiq kiq"),
}


def baseline_of(row: str, contender: str) -> tuple[str, str] | None:
    if row == "peers enqueue":
        return ("enqueue", "rq Queue.enqueue")
    if row == "peers drain":
        return ("drain 1p", "rq SimpleWorker")
    if row == "latency":
        if contender in ("taskq fork", "taskq pool"):
            return (row, "rq Worker")
        return None if contender.startswith("rq ") else (row, "rq SimpleWorker")
    if row == "memory":
        return None
    if row in ("drain limits", "drain group"):  # limits on / one group, against the same drain plain
        return None if contender == "taskq inline" else (row, "taskq inline")
    if row == "replicated":  # QUEUE_WAIT_REPLICAS=1, against the same enqueue without
        return None if contender == "taskq enqueue" else (row, "taskq enqueue")
    if row == "job bytes":
        return None if contender.startswith("rq ") else (row, "rq Queue.enqueue")
    name = BASELINES.get(contender)
    return (row, name) if name else None


@dataclass
class Line:
    row: str
    contender: str
    unit: str
    value: float
    extra: dict[str, float]
    ratios: dict[str, float] = field(default_factory=dict)  # "baseline", "floor", "peer" -> median ratio
    baseline: str = ""


def _ratio(row: str, ours: float, base: float) -> float:
    if not ours or not base:
        return float("nan")
    return base / ours if row in LOWER_IS_BETTER else ours / base


def _fastest_peer(index: dict[tuple[str, str], float], row: str) -> float | None:
    peer_row = PEER_ROW.get(row)
    if peer_row is None:
        return None
    values = [index[(peer_row, p)] for p in ROW_PEERS.get(row, PEERS) if (peer_row, p) in index]
    if not values:
        return None
    return min(values) if row in LOWER_IS_BETTER else max(values)


def aggregate(rounds: list[list[Result]], once: list[Result]) -> list[Line]:
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    extras: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    ratios: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    units: dict[tuple[str, str], str] = {}
    for results in [*rounds, once]:
        index = {(r.row, r.contender): r.value for r in results}
        for r in results:
            key = (r.row, r.contender)
            units[key] = r.unit
            values[key].append(r.value)
            for name, v in r.extra.items():
                extras[key][name].append(v)
            base = baseline_of(r.row, r.contender)
            if base and base in index:
                ratios[key]["baseline"].append(_ratio(r.row, r.value, index[base]))
            floor = FLOOR.get(r.row)
            if floor and floor in index and floor != key:
                ratios[key]["floor"].append(_ratio(r.row, r.value, index[floor]))
            peer = _fastest_peer(index, r.row)
            if peer and r.contender.startswith("taskq"):
                ratios[key]["peer"].append(_ratio(r.row, r.value, peer))
            sibling = (r.row, SIBLINGS.get(r.contender, ""))
            if sibling in index and r.row != "memory":
                ratios[key]["inline"].append(_ratio(r.row, r.value, index[sibling]))
    lines = []
    for key, vals in values.items():
        base = baseline_of(*key)
        lines.append(
            Line(
                key[0], key[1], units[key], median(vals),
                {name: median(v) for name, v in extras[key].items()},
                {name: median(v) for name, v in ratios[key].items()},
                base[1] if base else "",
            )
        )  # fmt: skip
    return lines


def _find(lines: list[Line], row: str, contender: str) -> Line | None:
    return next((line for line in lines if line.row == row and line.contender == contender), None)


#: (target, row, contender, ratio kind, at least): the ratios each issue asked for.
CHECKS: list[tuple[str, str, str, str, float]] = [
    ("single enqueue >= 2.5x rq Queue.enqueue", "enqueue", "taskq enqueue", "baseline", 2.5),
    (
        "single enqueue, signed, >= 2.5x rq Queue.enqueue",
        "enqueue",
        "taskq enqueue (signed)",
        "baseline",
        2.5,
    ),
    ("single enqueue >= fastest peer", "enqueue", "taskq enqueue", "peer", 1.0),
    (
        "single enqueue, typed params validated, >= 0.9x untyped",
        "enqueue",
        "taskq enqueue (typed params)",
        "baseline",
        0.9,
    ),
    ("single enqueue, signed, >= 0.95x fastest peer", "enqueue", "taskq enqueue (signed)", "peer", 0.95),
    ("bulk, signed, >= 2x rq enqueue_many", "bulk", "taskq enqueue_many (signed)", "baseline", 2.0),
    ("bulk >= 2x rq enqueue_many", "bulk", "taskq enqueue_many", "baseline", 2.0),
    ("drain fork (1p) >= 4x rq Worker", "drain 1p", "taskq fork", "baseline", 4.0),
    ("drain fork (2p) >= 4x rq Worker", "drain 2p", "taskq fork", "baseline", 4.0),
    ("drain inline (1p) >= 2x SimpleWorker", "drain 1p", "taskq inline", "baseline", 2.0),
    ("drain inline (2p) >= 2x SimpleWorker", "drain 2p", "taskq inline", "baseline", 2.0),
    ("drain inline (1p) >= fastest peer", "drain 1p", "taskq inline", "peer", 1.0),
    ("drain pool (1p) >= 0.7x inline", "drain 1p", "taskq pool", "inline", 0.7),
    ("drain pool (2p) >= 0.7x inline", "drain 2p", "taskq pool", "inline", 0.7),
    ("drain pool (1p) >= 5x rq Worker", "drain 1p", "taskq pool", "baseline", 5.0),
    ("drain pool (2p) >= 5x rq Worker", "drain 2p", "taskq pool", "baseline", 5.0),
    ("start latency p50 <= fastest peer (inline)", "latency", "taskq inline", "peer", 1.0),
    ("start latency p50 <= fastest peer (fork)", "latency", "taskq fork", "peer", 1.0),
    ("start latency p50 <= fastest peer (pool)", "latency", "taskq pool", "peer", 1.0),
    ("bytes per queued job, signed, near rq's (>= 0.9x)", "job bytes", "taskq (signed)", "baseline", 0.9),
    (
        "drain with a concurrency limit >= 0.8x without",
        "drain limits",
        "taskq inline, concurrency:64",
        "baseline",
        0.8,
    ),
    (
        "drain with per-key limits >= 0.8x without",
        "drain limits",
        "taskq inline, per key (100 keys)",
        "baseline",
        0.8,
    ),
    (
        "a 10,000-child group, enqueue + drain, >= 0.8x plain",
        "drain group",
        "taskq inline, one group",
        "baseline",
        0.8,
    ),
]
CHECKS += [
    (
        "io drain, concurrency 100 >= fastest of arq/SAQ/taskiq",
        "io drain",
        "taskq --concurrency 100",
        "peer",
        1.0,
    ),
    (
        "AsyncRQQueue.enqueue >= arq enqueue_job",
        "async enqueue",
        "taskq AsyncRQQueue.enqueue",
        "baseline",
        1.0,
    ),
]
#: (target, row, contender, extra figure, at least): a figure of the line itself, as a ratio.
FIGURE_CHECKS: list[tuple[str, str, str, str, float]] = [
    (
        "io drain, concurrency 100 >= 0.95x the ceiling",
        "io drain",
        "taskq --concurrency 100",
        "ceiling_ratio",
        0.95,
    ),
]
#: (target, row, contender, at most, unit): figures with an absolute bound.
BOUNDS: list[tuple[str, str, str, float, str]] = [
    ("start latency p50 <= 3 ms (inline)", "latency", "taskq inline", 3.0, "ms"),
    ("start latency p50 <= 3 ms (fork)", "latency", "taskq fork", 3.0, "ms"),
    ("worker RSS growth < 10% over the jobs", "memory", "taskq inline", 10.0, "%"),
    ("pool worker + horses RSS growth < 10% over the jobs", "memory", "taskq pool", 10.0, "%"),
]


def targets(lines: list[Line]) -> list[dict[str, Any]]:
    """Every target, with the measured figure and met / missed."""
    out: list[dict[str, Any]] = []
    for name, row, contender, kind, need in CHECKS:
        line = _find(lines, row, contender)
        got = line.ratios.get(kind) if line else None
        out.append(_target(name, got, need, f"{got:.2f}x" if got is not None else "n/a", higher=True))
    for name, row, contender, figure, need in FIGURE_CHECKS:
        line = _find(lines, row, contender)
        got = line.extra.get(figure) if line else None
        out.append(_target(name, got, need, f"{got:.3f}x" if got is not None else "n/a", higher=True))
    for name, row, contender, bound, unit in BOUNDS:
        line = _find(lines, row, contender)
        got = line.value if line else None
        shown = "n/a" if got is None else f"{got:.2f} ms" if unit == "ms" else f"{got:.1f}%"
        out.append(_target(name, got, bound, shown, higher=False))
    return out


def _target(name: str, got: float | None, need: float, shown: str, higher: bool) -> dict[str, Any]:
    if got is None or got != got:  # missing or NaN
        status = "not measured"
    else:
        status = "met" if (got >= need if higher else got <= need) else "missed"
    return {"target": name, "measured": shown, "status": status}


def _figure(line: Line) -> str:
    if line.unit == "ms":
        return f"p50 {line.extra['p50_ms']:.2f} ms, p99 {line.extra['p99_ms']:.2f} ms"
    if line.unit == "bytes":
        return f"{line.value:,.0f} bytes per queued job"
    if line.unit == "% RSS":
        return f"{line.extra['before_mib']:.1f} -> {line.extra['after_mib']:.1f} MiB ({line.value:+.1f}%)"
    text = f"{line.value:,.0f} jobs/s"
    if "p50_ms" in line.extra:
        text += f" (call p50 {line.extra['p50_ms']:.3f} / p99 {line.extra['p99_ms']:.3f} ms)"
    if "ceiling_ratio" in line.extra:
        text += f" ({line.extra['ceiling_ratio']:.3f}x the ceiling, {line.extra['seconds']:.3f} s)"
    if "enqueue_s" in line.extra:
        text += f" (enqueue {line.extra['enqueue_s']:.2f} s)"
    if "startup_s" in line.extra:
        text += f" (start {line.extra['startup_s']:.2f} s, then {line.extra['steady_jobs_s']:,.0f}/s)"
    return text


def _x(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}x"


ROW_ORDER = ["enqueue", "replicated", "bulk", "drain 1p", "drain 2p", "drain limits", "drain group"]
ROW_ORDER += ["latency", "memory", "job bytes", "peers enqueue", "peers drain", "async enqueue", "io drain"]


def table(lines: list[Line], target_rows: list[dict[str, Any]]) -> str:
    ordered = sorted(lines, key=lambda line: (ROW_ORDER.index(line.row), line.contender))
    header = ("row", "contender", "figure (median)", "x baseline", "baseline", "x raw Redis")
    rows = [(*header, "x fastest peer", "x inline")]
    for line in ordered:
        rows.append(
            (
                line.row, line.contender, _figure(line), _x(line.ratios.get("baseline")),
                line.baseline or "-", _x(line.ratios.get("floor")), _x(line.ratios.get("peer")),
                _x(line.ratios.get("inline")),
            )
        )  # fmt: skip
    out = [_markdown(rows), "", _markdown([("target", "measured", "status")] + [
        (t["target"], t["measured"], t["status"]) for t in target_rows
    ])]  # fmt: skip
    return "\n".join(out)


def _markdown(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
