"""The I/O-bound job of the asyncio rows, the same body for taskq and every peer.

`io_job` awaits `IO_SECONDS` (an API call, a download) between two stamps in the shared memory
file `BENCH_IO_LEDGER` (mmap: the first start, the last end, the count of ends; ~1 us each, where
a write(2) per stamp cost ~50 us on this VM and loaded the very event loop it measured). The
drain's time is the last end minus the first start, as the jobs saw it, the same for every system.
One worker process writes it (each row runs one).
"""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
import time
from pathlib import Path

IO_SECONDS = 0.05
#: taskq's registration of the job (the peers import it by module).
IO_JOB = "bench.aio_jobs.io_job"
JOB_ENV = {"QUEUE_EXTRA_JOBS": f"bench_io={IO_JOB}"}
#: ends (q), first start (d), last end (d)
_LAYOUT = struct.Struct("=qdd")

_map: mmap.mmap | None = None


def _ledger() -> mmap.mmap:
    global _map
    if _map is None:
        fd = os.open(os.environ["BENCH_IO_LEDGER"], os.O_RDWR)
        _map = mmap.mmap(fd, _LAYOUT.size)
        os.close(fd)
    return _map


async def io_job() -> None:
    ledger = _ledger()
    ends, first, last = _LAYOUT.unpack_from(ledger)
    if not first:
        _LAYOUT.pack_into(ledger, 0, ends, time.time(), last)
    await asyncio.sleep(IO_SECONDS)
    ends, first, _ = _LAYOUT.unpack_from(ledger)
    _LAYOUT.pack_into(ledger, 0, ends + 1, first, time.time())


async def io_job_ctx(ctx: object) -> None:
    """`io_job` for arq and SAQ, which pass a context first."""
    await io_job()


class Ledger:
    """The harness's side: how many jobs ended, the first start and the last end."""

    def __init__(self, path: Path) -> None:
        path.write_bytes(b"\0" * _LAYOUT.size)
        self.path = path
        self.ends, self.first, self.last = 0, 0.0, 0.0

    def read(self) -> int:
        self.ends, self.first, self.last = _LAYOUT.unpack(self.path.read_bytes()[: _LAYOUT.size])
        return int(self.ends)
