"""Every Prometheus metric the suite exports, defined once.

Names carry the ``boxoffice_`` prefix and base units (seconds, ratios from 0
to 1); counters end in ``_total``. Labels are low-cardinality (stage, result,
sale, synthetic, name): never a fan id. Dashboards and alert rules may use
only the names defined here, and a test checks that.

Each process registers only the families it uses, on the default registry
or on one it passes in, through the ``*_metrics`` factories below.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "boxoffice"
# Buckets for waits from a second to tens of minutes: time in queue, probes.
LONG_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
# Buckets for request latencies.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class WindowMetrics:
    """Metrics of the window assignment processor."""

    admitted: Counter
    freed: Counter
    windows_in_use: Gauge
    windows: Gauge
    admission_rate: Gauge
    fans_waiting: Gauge
    tickets_left: Gauge
    time_in_queue: Histogram
    loop_errors: Counter


def window_metrics(registry: CollectorRegistry = DEFAULT_REGISTRY) -> WindowMetrics:
    """Create and register the window processor's metrics."""
    return WindowMetrics(
        admitted=Counter(
            f"{PREFIX}_admissions_total",
            "Fans admitted to a ticket-issuing window.",
            ["sale", "synthetic"],
            registry=registry,
        ),
        freed=Counter(
            f"{PREFIX}_windows_freed_total",
            "Windows freed, by reason (purchase, claim_timeout, expired, sold_out).",
            ["sale", "reason"],
            registry=registry,
        ),
        windows_in_use=Gauge(
            f"{PREFIX}_windows_in_use",
            "Ticket-issuing windows serving a fan now.",
            ["sale"],
            registry=registry,
        ),
        windows=Gauge(
            f"{PREFIX}_windows",
            "Ticket-issuing windows configured for the sale (W).",
            ["sale"],
            registry=registry,
        ),
        admission_rate=Gauge(
            f"{PREFIX}_admission_rate_per_second",
            "Recent admissions per second, as published to the fans.",
            ["sale"],
            registry=registry,
        ),
        fans_waiting=Gauge(
            f"{PREFIX}_fans_waiting",
            "Fans numbered and not yet admitted.",
            ["sale"],
            registry=registry,
        ),
        tickets_left=Gauge(
            f"{PREFIX}_tickets_left",
            "Tickets not yet sold.",
            ["sale"],
            registry=registry,
        ),
        time_in_queue=Histogram(
            f"{PREFIX}_time_in_queue_seconds",
            "Time from numbering to admission.",
            ["sale", "synthetic"],
            buckets=LONG_BUCKETS,
            registry=registry,
        ),
        loop_errors=Counter(
            f"{PREFIX}_window_loop_errors_total",
            "Errors caught and survived by the window processor's loop.",
            registry=registry,
        ),
    )


@dataclass(frozen=True)
class TicketingMetrics:
    """Metrics of the ticketing service."""

    purchases: Counter
    tickets_sold: Counter
    purchase_latency: Histogram


def ticketing_metrics(
    registry: CollectorRegistry = DEFAULT_REGISTRY,
) -> TicketingMetrics:
    """Create and register the ticketing service's metrics."""
    return TicketingMetrics(
        purchases=Counter(
            f"{PREFIX}_purchases_total",
            "Purchase requests by result (ok, sold_out, invalid_token, replay, error).",
            ["sale", "result", "synthetic"],
            registry=registry,
        ),
        tickets_sold=Counter(
            f"{PREFIX}_tickets_sold_total",
            "Tickets sold to real fans.",
            ["sale"],
            registry=registry,
        ),
        purchase_latency=Histogram(
            f"{PREFIX}_purchase_duration_seconds",
            "Time the ticketing service took to answer a purchase.",
            ["result"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        ),
    )


@dataclass(frozen=True)
class WorkQueueMetrics:
    """Metrics of the window processor's reading of the work queue."""

    messages: Counter
    oldest_message_age: Gauge


def work_queue_metrics(
    registry: CollectorRegistry = DEFAULT_REGISTRY,
) -> WorkQueueMetrics:
    """Create and register the window processor's work-queue metrics."""
    return WorkQueueMetrics(
        messages=Counter(
            f"{PREFIX}_work_messages_total",
            "Work messages handled by the window processor, by result (admitted, "
            "sold_out, duplicate, not_numbered, window_taken, conflict, "
            "unknown_sale, malformed).",
            ["result"],
            registry=registry,
        ),
        oldest_message_age=Gauge(
            f"{PREFIX}_oldest_work_message_age_seconds",
            "Age of the sale's oldest work message: now minus when the fan at "
            "the head of the line was numbered; 0 when the line is empty.",
            ["sale"],
            registry=registry,
        ),
    )
