"""Every Prometheus metric the suite exports, defined once.

Names carry the ``boxoffice_`` prefix and base units (seconds, ratios from 0
to 1); counters end in ``_total``. Labels are low-cardinality (stage, result,
sale, synthetic, name): never a fan id. Dashboards and alert rules may use
only the names defined here, and a test checks that.

Each process registers only the families it uses, on the default registry
or on one it passes in, through the ``*_metrics`` factories below.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

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


# Canary and funnel monitor (monitors/): the scheduled probe and the numbers
# it polls from AWS.

# Buckets for one probe stage: a healthy stage takes about a second, a stuck
# one runs into its deadline of tens of seconds to minutes.
PROBE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300)


@dataclass(frozen=True)
class CanaryMetrics:
    """Metrics of the scheduled canary: runs, stage timings and alert state."""

    runs: Counter
    stage_duration: Histogram
    probe_duration: Histogram
    last_run: Gauge
    last_success: Gauge
    interval: Gauge
    failing: Gauge
    notifications: Counter


def canary_metrics(registry: CollectorRegistry = DEFAULT_REGISTRY) -> CanaryMetrics:
    """Create and register the canary's metrics."""
    return CanaryMetrics(
        runs=Counter(
            f"{PREFIX}_canary_runs_total",
            "Probe runs by result (success, failure, error, skipped).",
            ["sale", "result"],
            registry=registry,
        ),
        stage_duration=Histogram(
            f"{PREFIX}_canary_stage_duration_seconds",
            "Time the synthetic fan took to pass one funnel stage, or to fail it.",
            ["sale", "stage", "result"],
            buckets=PROBE_BUCKETS,
            registry=registry,
        ),
        probe_duration=Histogram(
            f"{PREFIX}_canary_probe_duration_seconds",
            "Time one probe took from join to cleanup.",
            ["sale", "result"],
            buckets=PROBE_BUCKETS,
            registry=registry,
        ),
        last_run=Gauge(
            f"{PREFIX}_canary_last_run_timestamp_seconds",
            "When the last probe finished, whatever its result, or when the "
            "monitor started if none has finished yet (epoch seconds).",
            ["sale"],
            registry=registry,
        ),
        last_success=Gauge(
            f"{PREFIX}_canary_last_success_timestamp_seconds",
            "When the last successful probe finished (epoch seconds).",
            ["sale"],
            registry=registry,
        ),
        interval=Gauge(
            f"{PREFIX}_canary_interval_seconds",
            "Configured time between two probes.",
            ["sale"],
            registry=registry,
        ),
        failing=Gauge(
            f"{PREFIX}_canary_failing",
            "1 while the canary alert fires (M of the last N probes failed), else 0.",
            ["sale"],
            registry=registry,
        ),
        notifications=Counter(
            f"{PREFIX}_canary_notifications_total",
            "Alert notifications by receiver kind, alert status and result.",
            ["receiver", "status", "result"],
            registry=registry,
        ),
    )


class PolledCounter(Collector):
    """A counter whose total is kept elsewhere and read by a poller.

    The forwarder counts its bad records in DynamoDB. Exposing that total as
    it is, instead of counting deltas here, keeps the series monotonic when
    the monitor restarts.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def set(self, value: float, **labels: str) -> None:
        """Record the latest total read for one label set."""
        key = tuple(labels[name] for name in self.labelnames)
        with self._lock:
            self._values[key] = value

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            self.name, self.documentation, labels=self.labelnames
        )
        with self._lock:
            for key, value in self._values.items():
                family.add_metric(list(key), value)
        yield family

    def describe(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)


@dataclass(frozen=True)
class FunnelMetrics:
    """The funnel's numbers as the monitor polls them from the stack."""

    work_queue_messages: Gauge
    oldest_message_age: Gauge
    dead_letter_messages: Gauge
    fans_waiting: Gauge
    windows_in_use: Gauge
    tickets_left: Gauge
    forwarder_errors: PolledCounter
    polls: Counter
    last_poll: Gauge
    fans_numbered: PolledCounter


def funnel_metrics(registry: CollectorRegistry = DEFAULT_REGISTRY) -> FunnelMetrics:
    """Create and register the gauges the monitor polls from AWS."""
    return FunnelMetrics(
        work_queue_messages=Gauge(
            f"{PREFIX}_work_queue_messages",
            "Messages on the work queue, visible plus in flight.",
            registry=registry,
        ),
        oldest_message_age=Gauge(
            f"{PREFIX}_funnel_oldest_work_message_age_seconds",
            "Age of the sale's oldest work message, read from the sale's counters: "
            "now minus when the fan at the head of the line was numbered.",
            ["sale"],
            registry=registry,
        ),
        dead_letter_messages=Gauge(
            f"{PREFIX}_dead_letter_messages",
            "Messages on a dead-letter queue (queue: forwarder or work).",
            ["queue"],
            registry=registry,
        ),
        fans_waiting=Gauge(
            f"{PREFIX}_funnel_fans_waiting",
            "Fans numbered and not yet admitted, read from the sale's counters.",
            ["sale"],
            registry=registry,
        ),
        windows_in_use=Gauge(
            f"{PREFIX}_funnel_windows_in_use",
            "Windows serving a fan, read from the sale's counters.",
            ["sale"],
            registry=registry,
        ),
        tickets_left=Gauge(
            f"{PREFIX}_funnel_tickets_left",
            "Tickets not yet sold, read from the sale's counters.",
            ["sale"],
            registry=registry,
        ),
        forwarder_errors=PolledCounter(
            f"{PREFIX}_forwarder_errors_total",
            "Stream records the forwarder could not process and sent to the "
            "dead-letter queue, read from its counter in the sales table.",
            [],
            registry=registry,
        ),
        polls=Counter(
            f"{PREFIX}_funnel_polls_total",
            "Polls of the stack's tables and queues by result (success, error).",
            ["result"],
            registry=registry,
        ),
        last_poll=Gauge(
            f"{PREFIX}_funnel_last_poll_timestamp_seconds",
            "When the monitor last read the funnel's numbers (epoch seconds).",
            registry=registry,
        ),
        fans_numbered=PolledCounter(
            f"{PREFIX}_funnel_fans_numbered_total",
            "Fans given a queue number (joined the line), read from the sale's "
            "counters.",
            ["sale"],
            registry=registry,
        ),
    )


# --- Load tests: the Locust master's (or a local run's) exporter -------------


@dataclass
class RequestTally:
    """Running totals of one request name: counts and a latency histogram.

    ``bucket_counts`` holds one count per bound of ``REQUEST_BUCKETS`` plus one
    for larger values, not cumulative, so tallies from several Locust workers
    add up field by field.
    """

    requests: int = 0
    failures: int = 0
    duration_sum_seconds: float = 0.0
    bucket_counts: list[int] = field(
        default_factory=lambda: [0] * (len(REQUEST_BUCKETS) + 1)
    )

    def observe(self, seconds: float, failed: bool) -> None:
        """Count one request that took ``seconds`` and failed or not."""
        self.requests += 1
        self.failures += int(failed)
        self.duration_sum_seconds += seconds
        self.bucket_counts[bisect_left(REQUEST_BUCKETS, seconds)] += 1

    def copy(self) -> RequestTally:
        """Return an independent copy of this tally."""
        return RequestTally(
            self.requests,
            self.failures,
            self.duration_sum_seconds,
            list(self.bucket_counts),
        )

    def add(self, other: RequestTally) -> None:
        """Add another tally of the same request name to this one."""
        self.requests += other.requests
        self.failures += other.failures
        self.duration_sum_seconds += other.duration_sum_seconds
        for index, count in enumerate(other.bucket_counts):
            self.bucket_counts[index] += count


class RequestCollector:
    """Requests, failures and latency per request name, from tallies.

    A Locust master never sees its workers' request events, only the tallies
    they report, so these families are built from tallies at scrape time
    instead of from ``Counter`` and ``Histogram`` objects.
    """

    def __init__(self) -> None:
        self._tallies: dict[str, RequestTally] = {}
        self._lock = threading.Lock()

    def add(self, name: str, tally: RequestTally) -> None:
        """Add a tally for request ``name`` to the totals."""
        with self._lock:
            self._tallies.setdefault(name, RequestTally()).add(tally)

    def observe(self, name: str, seconds: float, failed: bool) -> None:
        """Count one request of ``name`` into the totals."""
        with self._lock:
            self._tallies.setdefault(name, RequestTally()).observe(seconds, failed)

    def describe(self) -> Iterable[Metric]:
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            snapshot = {name: tally.copy() for name, tally in self._tallies.items()}
        return self._families(snapshot)

    def _families(self, tallies: dict[str, RequestTally]) -> list[Metric]:
        requests = CounterMetricFamily(
            f"{PREFIX}_loadtest_requests",
            "Requests the simulated fans sent, by request name.",
            labels=["name"],
        )
        failures = CounterMetricFamily(
            f"{PREFIX}_loadtest_request_failures",
            "Requests that failed, by request name.",
            labels=["name"],
        )
        duration = HistogramMetricFamily(
            f"{PREFIX}_loadtest_request_duration_seconds",
            "Time from sending a request to its response, by request name.",
            labels=["name"],
        )
        for name, tally in sorted(tallies.items()):
            requests.add_metric([name], tally.requests)
            failures.add_metric([name], tally.failures)
            cumulative = list(accumulate(tally.bucket_counts))
            buckets = [
                (str(float(bound)), count)
                for bound, count in zip(REQUEST_BUCKETS, cumulative, strict=False)
            ]
            buckets.append(("+Inf", cumulative[-1]))
            duration.add_metric([name], buckets, tally.duration_sum_seconds)
        return [requests, failures, duration]


@dataclass(frozen=True)
class LoadTestMetrics:
    """Metrics of a load test, served by the Locust master or a local run."""

    users: Gauge
    arrivals: Counter
    requests: RequestCollector
    time_in_queue: Histogram
    fairness_inversions: Counter
    threshold_status: Gauge
    cpu_usage: Gauge


def loadtest_metrics(
    registry: CollectorRegistry = DEFAULT_REGISTRY,
) -> LoadTestMetrics:
    """Create and register a load test's metrics."""
    requests = RequestCollector()
    registry.register(requests)
    return LoadTestMetrics(
        users=Gauge(
            f"{PREFIX}_loadtest_users",
            "Simulated fans active now (Locust users, unless the load test "
            "counts its fans itself).",
            registry=registry,
        ),
        arrivals=Counter(
            f"{PREFIX}_loadtest_arrivals_total",
            "Simulated fans that arrived at the sale (started).",
            registry=registry,
        ),
        requests=requests,
        time_in_queue=Histogram(
            f"{PREFIX}_loadtest_time_in_queue_seconds",
            "Time a simulated fan waited from joining to seeing its turn.",
            ["sale"],
            buckets=LONG_BUCKETS,
            registry=registry,
        ),
        fairness_inversions=Counter(
            f"{PREFIX}_loadtest_fairness_inversions_total",
            "Pairs of simulated fans admitted out of queue-number order.",
            ["sale"],
            registry=registry,
        ),
        threshold_status=Gauge(
            f"{PREFIX}_loadtest_threshold_status",
            "Whether a pass/fail threshold of the load test holds (1) or not (0).",
            ["name"],
            registry=registry,
        ),
        cpu_usage=Gauge(
            f"{PREFIX}_loadtest_cpu_usage_ratio",
            "Highest CPU usage among the Locust processes, from 0 to 1; near 1 "
            "the load generator, not the system, limits the figures.",
            registry=registry,
        ),
    )
