import os

from app.infrastructure.queue.schedules import Schedule

SCHEDULES = [
    Schedule(
        "tick",
        "ledger",
        {"path": os.environ.get("TASKQ_TEST_SCHEDULE_LEDGER", "/dev/null"), "token": "tick"},
        every=1,
        overlap="allow",
    )
]
