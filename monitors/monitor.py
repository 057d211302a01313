"""The scheduled canary: run the probe on an interval, export, alert.

APScheduler runs two jobs: the probe, every interval with jitter, and the
funnel poll. Each job allows one instance at a time, so a probe that is
still running makes the next run skip, and the skip is counted. Any error
of a probe is logged, counted and treated as a failed probe; the scheduler
keeps running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry, start_http_server

from monitors.alerting import (
    DEFAULT_ALERT_AFTER,
    DEFAULT_ALERT_WINDOW,
    AlertState,
    Transition,
)
from monitors.errors import InvalidMonitorConfigError
from monitors.metrics import CanaryMetrics, canary_metrics, funnel_metrics
from monitors.notify import Alert, Dispatcher, WebhookNotifier
from monitors.poller import FunnelPoller
from synthetic.probe import Probe
from synthetic.result import PASSED, ProbeResult
from synthetic.result import SKIPPED as STAGE_SKIPPED

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 60.0
# Each run starts up to this share of the interval late, so monitors started
# together (one per region, say) do not probe in step.
DEFAULT_JITTER_RATIO = 0.1
DEFAULT_FUNNEL_INTERVAL_SECONDS = 15.0
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9478
PROBE_JOB = "canary-probe"
FUNNEL_JOB = "funnel-poll"
# A run that could not start within this long of its time is dropped as
# skipped; the next one follows on the interval.
MISFIRE_GRACE_SECONDS = 5

# Results of a probe run, the ``result`` label of boxoffice_canary_runs_total.
SUCCESS = "success"
FAILURE = "failure"
ERROR = "error"  # the probe itself raised
SKIPPED = "skipped"  # the previous probe was still running


@dataclass(frozen=True)
class MonitorConfig:
    """How often to probe and poll, when to alert and where to serve metrics.

    ``metrics_port`` of ``None`` serves no ``/metrics``; 0 picks a free port.
    ``funnel_interval_seconds`` of ``None`` turns the funnel poll off.
    """

    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    jitter_seconds: float | None = None  # default: 10 % of the interval
    alert_after: int = DEFAULT_ALERT_AFTER
    alert_window: int = DEFAULT_ALERT_WINDOW
    recover_after: int | None = None
    funnel_interval_seconds: float | None = DEFAULT_FUNNEL_INTERVAL_SECONDS
    funnel_sale_ids: tuple[str, ...] = ()  # default: every sale on the stack
    metrics_host: str = DEFAULT_METRICS_HOST
    metrics_port: int | None = DEFAULT_METRICS_PORT

    def __post_init__(self) -> None:
        if not self.interval_seconds > 0:
            raise InvalidMonitorConfigError(
                f"Interval {self.interval_seconds!r} s is invalid; use more than 0."
            )
        if self.jitter_seconds is not None and self.jitter_seconds < 0:
            raise InvalidMonitorConfigError(
                f"Jitter {self.jitter_seconds!r} s is invalid; use 0 or more."
            )
        funnel = self.funnel_interval_seconds
        if funnel is not None and not funnel > 0:
            raise InvalidMonitorConfigError(
                f"Funnel poll interval {funnel!r} s is invalid; use more than 0."
            )

    @property
    def jitter(self) -> float:
        """Seconds each probe run may start late."""
        if self.jitter_seconds is None:
            return self.interval_seconds * DEFAULT_JITTER_RATIO
        return self.jitter_seconds


class Monitor:
    """Run the canary probe on a schedule, export metrics and send alerts."""

    def __init__(
        self,
        probe: Probe,
        config: MonitorConfig | None = None,
        *,
        notifiers: list[WebhookNotifier] | None = None,
        registry: CollectorRegistry | None = None,
        on_result: Callable[[ProbeResult | None, str], None] | None = None,
    ) -> None:
        self.probe = probe
        self.config = config or MonitorConfig()
        self.registry = registry or CollectorRegistry()
        self.metrics: CanaryMetrics = canary_metrics(self.registry)
        self.poller: FunnelPoller | None = None
        if self.config.funnel_interval_seconds:
            self.poller = FunnelPoller(
                probe.settings,
                probe.resources,
                funnel_metrics(self.registry),
                self.config.funnel_sale_ids,
            )
        self.alert = AlertState(
            self.config.alert_after,
            self.config.alert_window,
            self.config.recover_after,
        )
        self.dispatcher = Dispatcher(notifiers or [], self.metrics)
        self.metrics_port: int | None = None
        self._on_result = on_result
        self._sale = probe.config.sale_id
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            timezone="UTC",
        )
        self._scheduler.add_listener(
            self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED
        )
        self._server: Any = None
        self._server_thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve ``/metrics``, then start probing now and on every interval."""
        sale = self._sale
        self.metrics.interval.labels(sale).set(self.config.interval_seconds)
        self.metrics.failing.labels(sale).set(0)
        # Until a probe finishes, the stale-canary rule counts from the start.
        self.metrics.last_run.labels(sale).set(time.time())
        self._serve_metrics()
        self._scheduler.add_job(
            self.run_probe,
            IntervalTrigger(
                seconds=self.config.interval_seconds, jitter=self.config.jitter
            ),
            id=PROBE_JOB,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
            next_run_time=_now(),
        )
        if self.poller is not None and self.config.funnel_interval_seconds:
            self._scheduler.add_job(
                self.poller.poll,
                IntervalTrigger(seconds=self.config.funnel_interval_seconds),
                id=FUNNEL_JOB,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=MISFIRE_GRACE_SECONDS,
                next_run_time=_now(),
            )
        self._scheduler.start()
        logger.info(
            "Monitor started: probe every %g s (jitter up to %g s), alert after %d "
            "of %d failed",
            self.config.interval_seconds,
            self.config.jitter,
            self.config.alert_after,
            self.config.alert_window,
        )

    def stop(self, wait: bool = True) -> None:
        """Stop the schedule, the notifier thread and the metrics server."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self.dispatcher.close(wait=wait)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        logger.info("Monitor stopped")

    def run_probe(self) -> ProbeResult | None:
        """Run one probe, record its result and alert on a state change.

        This is the scheduled job. It catches any ``Exception`` of the probe
        and counts it as a failed run, so the schedule goes on.
        """
        result: ProbeResult | None = None
        try:
            result = self.probe.run()
        except Exception:
            logger.exception("Probe raised; counting it as a failed run")
        self._record(result)
        return result

    def _record(self, result: ProbeResult | None) -> None:
        sale = self._sale
        metrics = self.metrics
        now = time.time()
        if result is None:
            outcome = ERROR
        else:
            outcome = SUCCESS if result.healthy else FAILURE
            for stage in result.stages:
                if stage.outcome == STAGE_SKIPPED:
                    continue
                label = SUCCESS if stage.outcome == PASSED else FAILURE
                metrics.stage_duration.labels(sale, stage.stage, label).observe(
                    stage.duration_seconds
                )
            metrics.probe_duration.labels(sale, outcome).observe(
                result.duration_seconds
            )
        metrics.runs.labels(sale, outcome).inc()
        metrics.last_run.labels(sale).set(now)
        if outcome == SUCCESS:
            metrics.last_success.labels(sale).set(now)
        transition = self.alert.record(outcome == SUCCESS, now)
        if transition is not None:
            self._notify(transition, result)
        if self._on_result is not None:
            self._on_result(result, outcome)

    def _notify(self, transition: Transition, result: ProbeResult | None) -> None:
        firing = transition.ended_at is None
        self.metrics.failing.labels(self._sale).set(1 if firing else 0)
        failed = result.failed_stage if result is not None else None
        summary = result.summary() if result is not None else "the probe raised"
        alert = Alert(
            status=transition.status,
            stack=self.probe.resources.stack_name,
            sale_id=self._sale,
            started_at=transition.started_at,
            ended_at=transition.ended_at,
            failures=transition.failures,
            window=transition.window,
            summary=summary,
            failed_stage=failed.stage if failed is not None else None,
        )
        logger.warning("Canary alert %s: %s", alert.status, alert.title)
        self.dispatcher.dispatch(alert)

    def _on_skipped(self, event: JobSubmissionEvent | JobExecutionEvent) -> None:
        if event.job_id != PROBE_JOB:
            return
        logger.warning("Skipped a probe run: the previous probe is still running")
        self.metrics.runs.labels(self._sale, SKIPPED).inc()

    def _serve_metrics(self) -> None:
        port = self.config.metrics_port
        if port is None:
            return
        self._server, self._server_thread = start_http_server(
            port, addr=self.config.metrics_host, registry=self.registry
        )
        self.metrics_port = int(self._server.server_address[1])
        logger.info(
            "Serving metrics on http://%s:%d/metrics",
            self.config.metrics_host,
            self.metrics_port,
        )


def _now() -> datetime:
    return datetime.now(UTC)
