"""The two log formats carry the same structured fields."""

from __future__ import annotations

import json
import logging

from app.logs import JsonFormatter, TextFormatter


def record(**extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "taskq.worker", "levelname": "INFO", "msg": "job finished"})
    made.__dict__.update(extra)
    return made


FIELDS = {"event": "finished", "job_id": "j1", "job_name": "a.b.c", "queue": "default", "attempt": 2}


def test_text_lines_end_with_key_value_pairs_and_quote_only_what_needs_it():
    line = TextFormatter().format(record(**FIELDS, duration=0.0123456, error='ValueError: "x" = 1'))
    assert line.endswith(
        "taskq.worker job finished job_id=j1 job_name=a.b.c queue=default attempt=2 duration=0.012 "
        'error="ValueError: \\"x\\" = 1"'
    )
    assert "event=" not in line


def test_a_line_without_fields_is_unchanged():
    assert TextFormatter().format(record()).endswith("INFO taskq.worker job finished")


def test_json_lines_carry_every_field():
    entry = json.loads(JsonFormatter().format(record(**FIELDS, duration=0.5)))
    assert entry["message"] == "job finished" and entry["level"] == "info"
    assert {k: entry[k] for k in (*FIELDS, "duration")} == {**FIELDS, "duration": 0.5}
