"""The consumer: `python -m app.worker` runs the registered jobs. Job code uses this face:

from app.worker import PermanentError, RateLimited, report_progress
"""

from __future__ import annotations

from typing import Any

__all__ = ["PermanentError", "RateLimited", "current_job", "report_progress"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from app.worker import runtime

    return getattr(runtime, name)
