"""`report_batch(results, label)`: a workflow's callback that tells how a batch went, in one log
line, and returns it: a group's outcome, counts and failed members (the results by job id are
counted, not repeated); as a chain's next step, what the job before it returned."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger("taskq.jobs")


def report_batch(results: dict[str, Any] | None = None, label: str = "") -> dict[str, Any]:
    """The report of `results` (a group's, passed by the workflow; see the queue README)."""
    given = results or {}
    if "group_id" not in given:
        report: dict[str, Any] = {"label": label, "previous": given}
    else:
        counts = given.get("counts", {})
        report = {
            "label": label,
            "group_id": given["group_id"],
            "state": given["state"],
            "total": given["total"],
            "finished": counts.get("finished", 0),
            "results": len(given.get("results", {})),
            "failed": sorted(given.get("failures", {})),
            "truncated": given.get("truncated", False),
        }
    log.info("batch report %s", json.dumps(report, default=str, sort_keys=True))
    return report
