"""The schedules every worker fires (see `app.infrastructure.queue.schedules.Schedule`).

`QUEUE_SCHEDULES_MODULE` names another module whose `SCHEDULES` is used instead (a deployment's
own, or a test's). Only registered jobs may be scheduled; a bad schedule stops the worker at
start, with one line naming it. For example:

    from datetime import timedelta
    SCHEDULES = [
        Schedule("nightly-reindex", "ingest_doc", {"doc_id": "catalog"}, cron="0 3 * * *",
                 timezone="Europe/Madrid", catchup=timedelta(hours=6)),
        Schedule("report", "ingest_doc", {"doc_id": "report"}, every=300),
    ]
"""

from __future__ import annotations

from app.infrastructure.queue.schedules import Schedule

SCHEDULES: list[Schedule] = []
