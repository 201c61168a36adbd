"""Tracing (the `otel` extra): one trace from the code that enqueues to the job, and no cost without it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.infrastructure.queue.rq_queue import RQQueue
from tests.support.inprocess import drain
from tests.support.processes import ROOT, WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exporter():
    """An in-memory exporter on the global provider (which can be set once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


def test_one_trace_runs_from_the_producer_to_the_job(settings, r, exporter):
    exporter.clear()
    queue = RQQueue(r, settings)
    with trace.get_tracer("web").start_as_current_span("POST /documents") as request:
        ok = queue.enqueue("add", {"a": 1, "b": 2})
        bad = queue.enqueue("fail_permanently", {"message": "traced"}, retry=0)
    stored = json.loads(r.hget(f"rq:job:{ok}", "taskq_trace"))
    assert stored["traceparent"].split("-")[1] == format(request.get_span_context().trace_id, "032x")
    drain(settings, r)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    producer = spans["POST /documents"]
    job = spans["run tests.support.jobs.add"]
    assert job.context.trace_id == producer.context.trace_id
    assert job.parent is not None and job.parent.span_id == producer.context.span_id
    assert job.kind is trace.SpanKind.CONSUMER
    assert (job.attributes["taskq.job.id"], job.attributes["taskq.queue"]) == (ok, "default")
    failed = spans["run tests.support.jobs.fail_permanently"]
    assert failed.context.trace_id == producer.context.trace_id
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert failed.attributes["taskq.job.id"] == bad


def test_a_job_enqueued_outside_a_trace_carries_none_and_starts_its_own(settings, r, exporter):
    exporter.clear()
    queue = RQQueue(r, settings)
    job_id = queue.enqueue("add", {"a": 1, "b": 2})
    assert r.hget(f"rq:job:{job_id}", "taskq_trace") is None
    drain(settings, r)
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.attributes["taskq.job.id"] == job_id


def test_without_opentelemetry_everything_works(settings):
    """A process where `import opentelemetry` fails: enqueue, run, and no trace field written."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        import redis
        from app import tracing
        from app.config import Settings
        from app.infrastructure.queue.rq_queue import RQQueue
        from tests.support.inprocess import drain
        assert tracing.trace is None and tracing.current_carrier() == ""
        settings = Settings.from_env()
        r = redis.Redis.from_url(settings.redis_url)
        job_id = RQQueue(r, settings).enqueue("add", {"a": 2, "b": 3})
        assert r.hget(f"rq:job:{job_id}", "taskq_trace") is None
        drain(settings, r)
        assert RQQueue(r, settings).get(job_id).result == 5
        """
    )
    env = {**settings.to_env(), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


SITECUSTOMIZE = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

# A batch that would wait a minute: only an explicit flush exports before the process ends.
provider = TracerProvider()
provider.add_span_processor(
    BatchSpanProcessor(ConsoleSpanExporter(out=open({path!r}, "a")), schedule_delay_millis=60_000)
)
trace.set_tracer_provider(provider)
"""


def test_a_forked_job_exports_its_span_before_its_process_exits(settings, r, tmp_path, exporter):
    spans = tmp_path / "spans.jsonl"
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE.format(path=str(spans)))
    queue = RQQueue(r, settings)
    with trace.get_tracer("web").start_as_current_span("enqueue") as request:
        job_id = queue.enqueue("add", {"a": 1, "b": 2})
    worker = WorkerProcess(settings, "--burst", "--mode", "fork", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    worker.start(wait_ready=False)
    assert worker.wait(timeout=30) == 0, worker.output
    exported = spans.read_text()
    assert f'"taskq.job.id": "{job_id}"' in exported
    assert format(request.get_span_context().trace_id, "032x") in exported
