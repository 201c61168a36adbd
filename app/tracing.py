"""Trace context across the queue, with the optional `otel` extra (opentelemetry-api/sdk).

The producer stores the caller's W3C trace context in the job (`taskq_trace`); the worker runs
the job in a span that is its child, so one trace goes from the request that enqueued to the job.
Without opentelemetry installed every function here is a no-op costing one `is None` check.
Exporters are the application's choice: configure the global TracerProvider (for example with
`opentelemetry-instrument`); the API alone records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import context, propagate, trace
except ImportError:  # the `otel` extra is not installed
    trace = None  # type: ignore[assignment]

#: The job hash field that carries the producer's trace context (JSON of W3C headers).
TRACE_FIELD = "taskq_trace"
_TRACER = "taskq"


def current_carrier() -> str:
    """The current trace context as JSON of W3C headers (`traceparent`, `tracestate`); '' if none."""
    if trace is None or not context.get_current():
        return ""  # no span and no baggage: nothing to carry (and ~4 us saved on every enqueue)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else ""


@contextmanager
def job_span(carrier: str | None, attributes: Mapping[str, Any]) -> Iterator[None]:
    """Run the block in a CONSUMER span named `run <job name>`, child of the producer's context.

    An exception leaving the block is recorded on the span and marks it as an error. A missing or
    unreadable carrier starts a new trace rather than failing the job.
    """
    if trace is None:
        yield
        return
    parent = propagate.extract(_headers(carrier)) if carrier else None
    tracer = trace.get_tracer(_TRACER)
    name = f"run {attributes.get('taskq.job.name', 'job')}"
    with tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=dict(attributes)
    ):
        yield


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans still buffered: a forked job process calls it before `os._exit`."""
    if trace is None:
        return
    force_flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_millis)


def _headers(carrier: str) -> dict[str, str]:
    try:
        headers = json.loads(carrier)
    except ValueError:
        return {}
    if not isinstance(headers, dict):
        return {}
    return {str(k): str(v) for k, v in headers.items()}
