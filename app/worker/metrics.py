"""Prometheus metrics of a worker (`--metrics-port`): its jobs as they end, the queues at scrape time.

`MetricsEvents` is a worker observer (see `events.py`): counters and a histogram updated in the
worker's own process. `QueueCollector` reads Redis when Prometheus scrapes, so depth, the oldest
queued job and the live workers are current without any polling in between. Imported only when
the flag is given: a worker without it never loads prometheus-client.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.infrastructure.queue.admin import STATES, LimitUse, QueueAdmin, QueueCounts, WaitingJob, WorkerInfo
from app.infrastructure.queue.errors import QueueError
from app.infrastructure.queue.leader import Lease
from app.worker.events import NoEvents

if TYPE_CHECKING:
    from app.infrastructure.queue.store import Claim
    from app.worker.execution import Outcome

log = logging.getLogger("taskq.worker")

#: Seconds; from a quick lookup to the default job timeout (180 s).
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300)


class MetricsEvents(NoEvents):
    """Counts what this worker does: attempts by outcome, their duration, retries, reaped jobs."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.started = Counter(
            "taskq_jobs_started", "Job attempts started.", ["job_name", "queue"], registry=registry
        )
        self.ended = Counter(
            "taskq_jobs",
            "Job attempts ended, by outcome: finished, failed, retried, stopped, requeued, handed_back.",
            ["job_name", "queue", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "taskq_job_retries",
            "Failed attempts that will be retried.",
            ["job_name", "queue"],
            registry=registry,
        )
        self.duration = Histogram(
            "taskq_job_duration_seconds",
            "Time from claim to recorded outcome, per attempt.",
            ["job_name", "queue", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.dropped = Counter(
            "taskq_outcomes_dropped",
            "Outcomes not written because the job had been given to another worker (a stale run).",
            ["job", "queue"],
            registry=registry,
        )
        self.schedule_skipped = Counter(
            "taskq_schedule_skipped",
            "Schedule ticks skipped because the previous run was still pending (overlap=skip).",
            ["schedule"],
            registry=registry,
        )
        self.schedule_missed = Counter(
            "taskq_schedule_missed",
            "Schedule ticks older than the catch-up window when a worker came to them: not run.",
            ["schedule"],
            registry=registry,
        )
        self.reaped = Counter(
            "taskq_jobs_reaped",
            "Jobs taken back by this worker's reaper, by outcome: requeued, failed (dead workers); "
            "canceled, released (deferred jobs whose dependency ended outside taskq).",
            ["queue", "outcome"],
            registry=registry,
        )

        self.loop_lag_seconds = Gauge(
            "taskq_event_loop_lag_seconds",
            "How late the worker's event loop answered its last tick (--concurrency N; 0 otherwise).",
            registry=registry,
        )
        self.loop_blocked_total = Counter(
            "taskq_event_loop_blocked",
            "Times a job blocked the worker's event loop past the warning threshold (--concurrency N).",
            ["job_name", "queue"],
            registry=registry,
        )

    def loop_lag(self, seconds: float) -> None:
        self.loop_lag_seconds.set(seconds)

    def loop_blocked(self, seconds: float, claim: Claim | None) -> None:
        self.loop_lag_seconds.set(seconds)
        name, queue = (claim.record.job_name, claim.queue) if claim is not None else ("", "")
        self.loop_blocked_total.labels(name, queue).inc()

    def job_started(self, claim: Claim) -> None:
        self.started.labels(claim.record.job_name, claim.queue).inc()

    def job_ended(self, claim: Claim, ending: str, outcome: Outcome, duration: float) -> None:
        name = claim.record.job_name
        self.ended.labels(name, claim.queue, ending).inc()
        self.duration.labels(name, claim.queue, ending).observe(duration)
        if ending == "retried":
            self.retries.labels(name, claim.queue).inc()

    def schedule_fired(self, name: str, enqueued: int, skipped: int, missed: int) -> None:
        self.schedule_skipped.labels(name).inc(skipped)
        self.schedule_missed.labels(name).inc(missed)

    def outcome_dropped(self, claim: Claim) -> None:
        self.dropped.labels(claim.record.job_name, claim.queue).inc()

    def jobs_reaped(self, queue: str, requeued: list[str], failed: list[str]) -> None:
        self.reaped.labels(queue, "requeued").inc(len(requeued))
        self.reaped.labels(queue, "failed").inc(len(failed))

    def jobs_settled(self, queue: str, canceled: list[str], released: list[str]) -> None:
        self.reaped.labels(queue, "canceled").inc(len(canceled))
        self.reaped.labels(queue, "released").inc(len(released))


class QueueCollector(Collector):
    """Reads every queue and the workers from Redis at each scrape (a few pipelined commands).

    Every queue, not only this worker's: a queue that no worker serves is the one to alert on.
    Only the holder of the metrics lease exports these gauges (`leader.py`), so they appear once
    per cluster and `sum()` over the targets counts each queue once; `taskq_metrics_leader`
    says which target that is.
    """

    def __init__(self, admin: QueueAdmin, lease: Lease) -> None:
        self.admin = admin
        self.lease = lease

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("taskq_redis_up", "1 if Redis answered this scrape, else 0.")
        leader = GaugeMetricFamily(
            "taskq_metrics_leader", "1 on the one target that exports the cluster-wide gauges."
        )
        try:
            leads = self.lease.hold()
            counts, workers = (self.admin.counts(), self.admin.workers()) if leads else ([], [])
            limits, handed_back = (self.admin.limits(), self.admin.waiting()) if leads else ([], [])
            pruned = self.admin.pruned() if leads else {}
            workflows = self.admin.workflows_pending() if leads else (0, 0)
        except QueueError as exc:
            log.warning("metrics: cannot read the queues: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        leader.add_metric([], int(leads))
        yield from (up, leader)
        if leads:
            yield from _cluster_gauges(counts, workers)
            yield from _flow_gauges(counts, limits, handed_back)
            yield _pruned(pruned)
            strangers = GaugeMetricFamily(
                "taskq_foreign_workers", "Live workers on our queues that are not taskq's (plain rq workers)."
            )
            strangers.add_metric([], len(self.admin.strangers(workers)))
            suspended = GaugeMetricFamily("taskq_suspended", "1 while `rq suspend` holds every worker.")
            suspended.add_metric([], int(self.admin.suspended()))
            yield from (strangers, suspended)
            yield from _workflow_gauges(*workflows)


def _workflow_gauges(workflows: int, members: int) -> Iterator[Metric]:
    pending = GaugeMetricFamily(
        "taskq_workflows_pending", "Chains and groups with members not settled yet (issue 14)."
    )
    pending.add_metric([], workflows)
    settling = GaugeMetricFamily(
        "taskq_workflow_members_pending", "Members of chains and groups not settled yet, in all."
    )
    settling.add_metric([], members)
    yield from (pending, settling)


def _cluster_gauges(counts: list[QueueCounts], workers: list[WorkerInfo]) -> Iterator[Metric]:
    depth = GaugeMetricFamily("taskq_queue_depth", "Jobs waiting in the queue.", labels=["queue"])
    oldest = GaugeMetricFamily(
        "taskq_queue_oldest_job_age_seconds",
        "How long the oldest job at the head of the queue has waited (0 when empty).",
        labels=["queue"],
    )
    jobs = GaugeMetricFamily("taskq_queue_jobs", "Jobs of the queue by state.", labels=["queue", "state"])
    for c in counts:
        depth.add_metric([c.queue], c.queued)
        oldest.add_metric([c.queue], c.oldest_queued_age or 0.0)
        for state in STATES:
            jobs.add_metric([c.queue, state], getattr(c, state))
    alive = GaugeMetricFamily("taskq_workers_alive", "Workers registered and alive (all queues).")
    alive.add_metric([], len(workers))
    yield from (depth, oldest, jobs, alive)


def _flow_gauges(
    counts: list[QueueCounts], limits: list[LimitUse], handed_back: list[WaitingJob]
) -> Iterator[Metric]:
    """Limits in use, and jobs waiting for a worker that knows them."""
    running = GaugeMetricFamily(
        "taskq_limit_running",
        "Jobs running under a limit (concurrency), or started in its window (rate).",
        labels=["job_name", "limit"],
    )
    waiting = GaugeMetricFamily(
        "taskq_limit_waiting", "Jobs queued but held back by a limit.", labels=["job_name", "limit"]
    )
    for use in limits:
        running.add_metric([use.job_name, use.kind], use.running)
        waiting.add_metric([use.job_name, use.kind], use.waiting)
    unknown = GaugeMetricFamily(
        "taskq_jobs_waiting_for_worker",
        "Jobs handed back by workers that do not know them, waiting for one that does.",
        labels=["queue"],
    )
    for c in counts:
        unknown.add_metric([c.queue], sum(job.queue == c.queue for job in handed_back))
    yield from (running, waiting, unknown)


def _pruned(pruned: dict[str, int]) -> Metric:
    """Read from Redis (every worker's prunes, kept across restarts), so it is a counter, not a gauge."""
    family = CounterMetricFamily(
        "taskq_failed_pruned",
        "Failed jobs deleted, oldest first, because the queue's failed registry held QUEUE_MAX_FAILED.",
        labels=["queue"],
    )
    for queue, count in pruned.items():
        family.add_metric([queue], count)
    return family


def serve(port: int, host: str, admin: QueueAdmin) -> MetricsEvents:
    """Start the `/metrics` HTTP server (a daemon thread) and return the observer to give the worker.

    Raises:
        OSError: the port cannot be bound (in use, or not allowed).
    """
    registry = CollectorRegistry()
    events = MetricsEvents(registry)
    lease = Lease(admin.connection, f"{socket.gethostname()}:{os.getpid()}:{port}")
    registry.register(QueueCollector(admin, lease))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    # The forker and the work horses are forked from this process: none of them may keep the
    # listening socket (a horse outliving its worker would hold the port against its successor).
    os.register_at_fork(after_in_child=server.socket.close)
    threading.Thread(target=_renew, args=(lease,), name="taskq-metrics-lease", daemon=True).start()
    return events


def _renew(lease: Lease) -> None:
    """Keep the lease between scrapes, so that the exporting target does not change needlessly."""
    while True:
        try:
            lease.hold()
        except QueueError as exc:
            log.debug("metrics lease not renewed: %s", exc)
        time.sleep(lease.ttl / 3)
