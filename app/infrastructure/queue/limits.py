"""Concurrency and rate limits per job name, and per key: parsed from `QUEUE_LIMITS` and from the
registry (`job_paths.LIMITS`), checked by the claim script (`lua/lib_limits.lua`).

    QUEUE_LIMITS="ingest_doc=concurrency:2;rate:10/1s,notify=concurrency_per_key:1;rate_per_key:5/1s"

- `concurrency:N`: at most N jobs of that name running at once, across every worker and host;
- `rate:N/period`: at most N started in any window of `period` (`1s`, `500ms`, `1m`, `1h`);
- `concurrency_per_key:N`, `rate_per_key:N/period`: the same for each `limit_key` given at enqueue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_PERIOD = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
KINDS = ("concurrency", "rate", "concurrency_per_key", "rate_per_key")


class LimitError(ValueError):
    """Raised when a limit cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class Limit:
    """The limits of one job name. Zero means none; a rate is (count, window in milliseconds)."""

    concurrency: int = 0
    rate: tuple[int, int] = (0, 0)
    concurrency_per_key: int = 0
    rate_per_key: tuple[int, int] = (0, 0)

    def in_force(self) -> list[tuple[str, str]]:
        """(kind, allowed) of each limit set: `("concurrency", "2")`, `("rate", "10/1000ms")`."""
        shown = {
            "concurrency": str(self.concurrency),
            "rate": f"{self.rate[0]}/{self.rate[1]}ms",
            "concurrency_per_key": str(self.concurrency_per_key),
            "rate_per_key": f"{self.rate_per_key[0]}/{self.rate_per_key[1]}ms",
        }
        values = [self.concurrency, self.rate[0], self.concurrency_per_key, self.rate_per_key[0]]
        return [(kind, shown[kind]) for kind, value in zip(KINDS, values, strict=True) if value]

    def as_list(self) -> list[int]:
        """The claim script's form: [concurrency, rate count, rate ms, and the same per key]."""
        return [self.concurrency, *self.rate, self.concurrency_per_key, *self.rate_per_key]


def parse(text: str) -> dict[str, Limit]:
    """`name=kind:value;kind:value,name=...` into {name: Limit}.

    Raises:
        LimitError: an entry, a kind or a value is not understood (the message names it).
    """
    limits: dict[str, Limit] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, specs = entry.partition("=")
        if not sep or not name.strip() or not specs.strip():
            raise LimitError(f"{entry!r}: entries look like name=concurrency:2;rate:10/1s")
        values: dict[str, object] = {}
        for spec in filter(None, (part.strip() for part in specs.split(";"))):
            kind, _, value = spec.partition(":")
            values[kind.strip()] = _value(entry, kind.strip(), value.strip())
        limits[name.strip()] = Limit(**values)  # type: ignore[arg-type]
    return limits


def _value(entry: str, kind: str, value: str) -> int | tuple[int, int]:
    if kind not in KINDS:
        raise LimitError(f"{entry!r}: {kind!r} is not one of {', '.join(KINDS)}")
    if kind.startswith("concurrency"):
        if not value.isdigit() or int(value) < 1:
            raise LimitError(f"{entry!r}: {kind} takes a whole number of 1 or more, not {value!r}")
        return int(value)
    count, slash, period = value.partition("/")
    window = _PERIOD.fullmatch(period.strip())
    if not slash or not count.strip().isdigit() or int(count) < 1 or window is None:
        raise LimitError(f"{entry!r}: {kind} looks like 10/1s (a count, a window in ms, s, m or h)")
    ms = int(float(window.group(1)) * _UNITS[window.group(2)])
    if ms < 1:
        raise LimitError(f"{entry!r}: {kind} needs a window of at least 1 ms")
    return int(count), ms


def merged(declared: Mapping[str, str], configured: str) -> dict[str, Limit]:
    """The registry's limits (`job_paths.LIMITS`), with `QUEUE_LIMITS` overriding by name."""
    limits = {name: one for name, spec in declared.items() for one in parse(f"{name}={spec}").values()}
    return {**limits, **parse(configured)}


def script_argument(limits: Mapping[str, Limit], resolve: Iterable[tuple[str, str]]) -> str:
    """The claim script's `limits` argument: JSON by job name (import path), '' for none.

    `resolve` is the registry's (short name, path) pairs: limits may name either.
    """
    paths = dict(resolve)
    by_path = {paths.get(name, name): limit.as_list() for name, limit in limits.items()}
    return json.dumps(by_path, separators=(",", ":")) if by_path else ""
