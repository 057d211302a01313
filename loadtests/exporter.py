"""Serve a load test's figures to Prometheus from inside Locust.

Call ``install(environment, port)`` once the runner exists (in Locust's
``init`` event, or after ``create_local_runner`` / ``create_master_runner``
when Locust is used as a library). Where it runs decides what it does:

- a local runner counts its own requests and serves ``/metrics``;
- a worker counts its requests and fans and sends them to the master with
  every stats report (every 3 s), and serves nothing;
- a master adds up its workers' reports and serves ``/metrics``.

Requests are counted from Locust's ``request`` event. The load test reports
the rest through the returned exporter (or ``find(environment)``), in any
process: ``set_active_fans(count)`` when the fans are not Locust users,
``record_arrival()`` when a fan arrives, ``record_admission(...)`` when a
fan sees its turn, and ``set_threshold(name, passed)`` for a pass/fail
threshold judged while Locust runs. Thresholds judged after Locust has
exited go out through ``loadtests.threshold_metrics``.

Every figure is in seconds and follows the contract of ``monitors.metrics``;
nothing depends on Locust's web UI.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from prometheus_client import CollectorRegistry, start_http_server

from loadtests.fairness import FairnessTracker
from loadtests.threshold_metrics import ScrapeClock
from monitors.metrics import LoadTestMetrics, RequestTally, loadtest_metrics
from system.errors import ExporterError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORT = 9646
UPDATE_INTERVAL_SECONDS = 1.0
# The key under which a worker's figures travel in its report to the master.
REPORT_KEY = "boxoffice"

_installed: weakref.WeakKeyDictionary[Environment, LoadTestExporter] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class _Batch:
    """Figures a worker collected since its last report to the master."""

    active_fans: int | None = None  # the latest count, not a sum
    arrivals: int = 0
    requests: dict[str, RequestTally] = field(default_factory=dict)
    # (sale id, queue number, admitted at, seconds waited) per admitted fan
    admissions: list[tuple[str, int, float, float]] = field(default_factory=list)

    def to_message(self) -> dict[str, Any]:
        return {
            "active_fans": self.active_fans,
            "arrivals": self.arrivals,
            "requests": {
                name: [t.requests, t.failures, t.duration_sum_seconds, t.bucket_counts]
                for name, t in self.requests.items()
            },
            "admissions": [list(admission) for admission in self.admissions],
        }

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> _Batch:
        requests = {
            name: RequestTally(int(count), int(failed), float(total), list(buckets))
            for name, (count, failed, total, buckets) in data["requests"].items()
        }
        admissions = [
            (str(sale), int(number), float(admitted_at), float(waited))
            for sale, number, admitted_at, waited in data["admissions"]
        ]
        fans = data["active_fans"]
        return cls(
            None if fans is None else int(fans),
            int(data["arrivals"]),
            requests,
            admissions,
        )


class LoadTestExporter:
    """Locust event listeners and the ``/metrics`` server of one load test."""

    def __init__(
        self,
        environment: Environment,
        registry: CollectorRegistry,
        *,
        final_scrape_timeout_seconds: float = 0.0,
    ) -> None:
        self.environment = environment
        self.registry = registry
        self.metrics: LoadTestMetrics = loadtest_metrics(registry)
        self.final_scrape_timeout_seconds = final_scrape_timeout_seconds
        self.port: int | None = None
        self._clock = ScrapeClock()
        registry.register(self._clock)
        self._batch = _Batch()
        self._active_fans: dict[str, int] = {}  # by worker id, "" for this process
        self._fairness: dict[str, FairnessTracker] = {}
        self._stopped_at: float | None = None
        self._last_report_at = 0.0
        self._server: Any = None
        self._updater: gevent.Greenlet | None = None

    @property
    def is_worker(self) -> bool:
        return isinstance(self.environment.runner, WorkerRunner)

    @property
    def is_master(self) -> bool:
        return isinstance(self.environment.runner, MasterRunner)

    # --- what the load test reports ---

    def set_active_fans(self, count: int) -> None:
        """Publish how many simulated fans this process runs now.

        Call it when the fans are not Locust users (one user driving many
        fans); until then the gauge shows Locust's user count.
        """
        if self.is_worker:
            self._batch.active_fans = count
        else:
            self._active_fans[""] = count
            self.metrics.users.set(sum(self._active_fans.values()))

    def record_arrival(self) -> None:
        """Count one simulated fan that arrived at the sale."""
        if self.is_worker:
            self._batch.arrivals += 1
        else:
            self.metrics.arrivals.inc()

    def record_admission(
        self, sale_id: str, queue_number: int, admitted_at: float, waited_seconds: float
    ) -> None:
        """Count one fan that saw its turn.

        ``admitted_at`` is the admission time the window processor wrote on
        the fan's item (epoch seconds, one clock for every fan), and
        ``waited_seconds`` the time from the fan's join to seeing its turn.
        """
        admission = (sale_id, queue_number, admitted_at, waited_seconds)
        if self.is_worker:
            self._batch.admissions.append(admission)
        else:
            self._apply_admission(*admission)

    def set_threshold(self, name: str, passed: bool) -> None:
        """Publish whether the pass/fail threshold ``name`` holds.

        Call it on the master (or the local runner): a worker serves nothing.
        """
        self.metrics.threshold_status.labels(name=name).set(1 if passed else 0)

    # --- Locust events ---

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: BaseException | None = None,
        **_kwargs: Any,
    ) -> None:
        # Locust reports milliseconds, or None for a request without a
        # response time. Such a request still counts, with zero duration.
        seconds = (response_time or 0.0) / 1000.0
        failed = exception is not None
        if self.is_worker:
            tally = self._batch.requests.setdefault(name, RequestTally())
            tally.observe(seconds, failed)
        else:
            self.metrics.requests.observe(name, seconds, failed)

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_KEY] = self._batch.to_message()
        self._batch = _Batch(active_fans=self._batch.active_fans)

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        message = data.get(REPORT_KEY)
        if message is None:
            return  # a worker without the exporter installed
        batch = _Batch.from_message(message)
        self._last_report_at = time.time()
        if batch.active_fans is not None:
            self._active_fans[client_id] = batch.active_fans
            self.metrics.users.set(sum(self._active_fans.values()))
        self.metrics.arrivals.inc(batch.arrivals)
        for name, tally in batch.requests.items():
            self.metrics.requests.add(name, tally)
        for admission in batch.admissions:
            self._apply_admission(*admission)

    def on_usage_monitor(self, cpu_usage: float, **_kwargs: Any) -> None:
        percents = [cpu_usage]
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            percents.extend(worker.cpu_usage for worker in runner.clients.values())
        self.metrics.cpu_usage.set(max(percents) / 100.0)

    def on_test_stop(self, **_kwargs: Any) -> None:
        self._stopped_at = time.time()
        self.update()

    def on_quitting(self, **_kwargs: Any) -> None:
        self.wait_for_final_scrape()
        self.stop()

    # --- serving ---

    def update(self) -> None:
        """Refresh the fans gauge and count the admissions that have settled.

        Once the test has stopped, every admission has settled: workers send
        their last ones with their final report.
        """
        runner = self.environment.runner
        if runner is not None and not self._active_fans:
            self.metrics.users.set(runner.user_count)
        stopped = self._stopped_at is not None
        for sale_id, tracker in self._fairness.items():
            found = tracker.settle(everything=stopped)
            self.metrics.fairness_inversions.labels(sale=sale_id).inc(found)

    def serve(self, port: int, addr: str = HOST) -> int:
        """Serve ``/metrics`` on ``addr:port`` and keep the gauges fresh.

        Port 0 picks a free port. Returns the port served.
        """
        try:
            self._server, _thread = start_http_server(
                port, addr=addr, registry=self.registry
            )
        except OSError as exc:
            raise ExporterError(
                f"Could not serve load-test metrics on {addr}:{port}: {exc}. "
                "Pass another port, or 0 for a free one."
            ) from exc
        self.port = int(self._server.server_port)
        self._updater = gevent.spawn(self._update_forever)
        logger.info(
            "Serving load-test metrics on http://%s:%d/metrics", addr, self.port
        )
        return self.port

    def wait_for_final_scrape(self) -> bool:
        """Keep serving until ``/metrics`` is read once after the test stopped.

        Waits at most ``final_scrape_timeout_seconds``, so Prometheus records
        the figures counted at the end (inversions, thresholds) before the
        process exits. Returns whether such a scrape happened.
        """
        if self._server is None or self.final_scrape_timeout_seconds <= 0:
            return False
        self.update()
        since = max(self._stopped_at or time.time(), self._last_report_at)
        deadline = time.monotonic() + self.final_scrape_timeout_seconds
        while self._clock.last_scrape <= since:
            if time.monotonic() >= deadline:
                logger.warning(
                    "Nothing read the load-test metrics within %.0f s after the "
                    "test stopped; the last figures were not scraped",
                    self.final_scrape_timeout_seconds,
                )
                return False
            gevent.sleep(0.1)
        return True

    def stop(self) -> None:
        """Stop serving ``/metrics``; the event listeners stay."""
        if self._updater is not None:
            self._updater.kill(block=False)
            self._updater = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            logger.info("Stopped serving load-test metrics")

    def _update_forever(self) -> None:
        while True:
            try:
                self.update()
            except Exception:
                # A failed refresh must not end the load test; try again.
                logger.exception("Could not refresh the load-test metrics")
            gevent.sleep(UPDATE_INTERVAL_SECONDS)

    def _apply_admission(
        self, sale_id: str, queue_number: int, admitted_at: float, waited_seconds: float
    ) -> None:
        self.metrics.time_in_queue.labels(sale=sale_id).observe(waited_seconds)
        tracker = self._fairness.get(sale_id)
        if tracker is None:
            tracker = self._fairness[sale_id] = FairnessTracker()
            # Show the series at zero before the first inversion settles.
            self.metrics.fairness_inversions.labels(sale=sale_id).inc(0)
        tracker.add(queue_number, admitted_at)


def install(
    environment: Environment,
    port: int = DEFAULT_PORT,
    *,
    addr: str = HOST,
    registry: CollectorRegistry | None = None,
    final_scrape_timeout_seconds: float = 0.0,
) -> LoadTestExporter:
    """Hook the exporter into ``environment``'s events and, unless on a worker,
    serve ``/metrics`` on ``addr:port`` (port 0: a free one, see ``.port``).

    With ``final_scrape_timeout_seconds`` above 0, the process waits at exit
    until Prometheus has read the figures once after the test stopped, but
    no longer than that. A few scrape intervals is enough.
    The runner must exist already. Installing twice on one environment
    returns the first exporter.
    """
    existing = _installed.get(environment)
    if existing is not None:
        return existing
    if environment.runner is None:
        raise ExporterError(
            "The Locust environment has no runner yet. Call install() from the "
            "init event or after create_local_runner()/create_master_runner()."
        )
    exporter = LoadTestExporter(
        environment,
        registry or CollectorRegistry(),
        final_scrape_timeout_seconds=final_scrape_timeout_seconds,
    )
    # Locust's EventHook.add_listener has no type hints.
    events: Any = environment.events
    events.usage_monitor.add_listener(exporter.on_usage_monitor)
    events.test_stop.add_listener(exporter.on_test_stop)
    events.quitting.add_listener(exporter.on_quitting)
    if exporter.is_master:
        events.worker_report.add_listener(exporter.on_worker_report)
    else:
        events.request.add_listener(exporter.on_request)
    if exporter.is_worker:
        events.report_to_master.add_listener(exporter.on_report_to_master)
    else:
        exporter.serve(port, addr)
    _installed[environment] = exporter
    return exporter


def find(environment: Environment) -> LoadTestExporter | None:
    """Return the exporter installed on ``environment``, if any."""
    return _installed.get(environment)
