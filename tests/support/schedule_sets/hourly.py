from app.infrastructure.queue.schedules import Schedule

SCHEDULES = [Schedule("hourly", "add", {"a": 1, "b": 1}, every=3600)]
