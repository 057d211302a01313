"""The scheduled monitor against the embedded stack: fault, alert, recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from monitors.monitor import Monitor, MonitorConfig
from monitors.notify import WebhookNotifier
from monitors.receiver import WebhookReceiver
from synthetic.config import ProbeConfig
from synthetic.probe import Probe
from synthetic.result import ProbeResult
from system import embedded
from system.clients import make_client
from system.funnel import queue_depth
from system.stack import StackResources
from tests.helpers import wait_for

INTERVAL_SECONDS = 10.0
ADMISSION_DEADLINE_SECONDS = 4.0
PROBE_DEADLINES = {"join": 3.0, "forward": 8.0, "admission": 4.0, "purchase": 4.0}
PROBE_TOTAL_SECONDS = 9.0
# Slack for one poll and one call past a deadline on a busy machine.
DEADLINE_SLACK_SECONDS = 2.0


class Runs:
    """Collect each probe result the monitor reports, in order."""

    def __init__(self) -> None:
        self.results: list[tuple[float, ProbeResult | None, str]] = []
        self.lock = threading.Lock()

    def __call__(self, result: ProbeResult | None, outcome: str) -> None:
        with self.lock:
            self.results.append((time.time(), result, outcome))

    def outcomes(self) -> list[str]:
        with self.lock:
            return [outcome for _, _, outcome in self.results]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def make_monitor(
    stack: embedded.EmbeddedState,
    resources: StackResources,
    notifier: WebhookNotifier,
    runs: Runs,
    *,
    interval: float = INTERVAL_SECONDS,
    deadlines: dict[str, float] = PROBE_DEADLINES,
) -> Monitor:
    probe = Probe(
        stack.settings,
        resources,
        ProbeConfig(
            stage_deadlines_seconds=deadlines,
            total_deadline_seconds=PROBE_TOTAL_SECONDS,
            poll_interval_seconds=0.2,
        ),
    )
    config = MonitorConfig(
        interval_seconds=interval,
        jitter_seconds=0,
        funnel_interval_seconds=2,
        metrics_port=0,
    )
    return Monitor(probe, config, notifiers=[notifier], on_result=runs)


def scrape(monitor: Monitor) -> str:
    return httpx.get(f"http://127.0.0.1:{monitor.metrics_port}/metrics").text


def test_processor_stop_fires_once_and_recovers_once(
    stack: embedded.EmbeddedState,
    resources: StackResources,
    receiver: WebhookReceiver,
) -> None:
    sqs = make_client(stack.settings, "sqs")
    dead_letters_before = queue_depth(sqs, resources.work_dead_letter_queue_url)
    runs = Runs()
    notifier = WebhookNotifier(receiver.url, attempts=2, backoff_seconds=0.1)
    monitor = make_monitor(stack, resources, notifier, runs)
    monitor.start()
    try:
        wait_for(
            lambda: "success" in runs.outcomes(), timeout=60, message="a healthy probe"
        )
        embedded.stop_service(stack, "processor")
        fault_at = time.time()
        fired = receiver.wait_for(lambda bodies: len(bodies) >= 1, timeout=90)
        assert fired[0]["status"] == "firing"
        assert fired[0]["alerts"][0]["annotations"]["stage"] == "admission"
        text = scrape(monitor)
        assert 'boxoffice_canary_failing{sale="canary"} 1.0' in text
        assert 'boxoffice_dead_letter_messages{queue="work"}' in text
        assert 'boxoffice_funnel_fans_waiting{sale="canary"}' in text
        assert "boxoffice_work_queue_messages " in text
        assert "boxoffice_forwarder_errors_total " in text

        embedded.start_services(stack)
        both = receiver.wait_for(lambda bodies: len(bodies) >= 2, timeout=90)
        assert [body["status"] for body in both] == ["firing", "resolved"]
        time.sleep(INTERVAL_SECONDS)  # one more probe: no flapping
        assert len(receiver.accepted()) == 2
    finally:
        monitor.stop()
        monitor.probe.close()
        embedded.start_services(stack)

    after_fault = [
        (result, outcome) for at, result, outcome in runs.results if at > fault_at
    ]
    failures = [result for result, outcome in after_fault if outcome == "failure"]
    assert len(failures) >= 2
    for result in failures:
        assert result is not None
        failed = result.failed_stage
        assert failed is not None
        assert failed.stage == "admission"
        assert failed.outcome == "timed_out"
        assert failed.duration_seconds <= (
            ADMISSION_DEADLINE_SECONDS + DEADLINE_SLACK_SECONDS
        )
    # The alert fired on the second failure, M of N with M = 2.
    first_two = [outcome for _, outcome in after_fault][:2]
    assert first_two == ["failure", "failure"]
    # The fans of the failed probes were closed, then deleted; none went to
    # the dead-letter queue.
    assert monitor.probe.cleaner.closed == []
    assert queue_depth(sqs, resources.work_dead_letter_queue_url) == dead_letters_before


def test_monitor_keeps_running_while_webhook_is_down(
    stack: embedded.EmbeddedState, resources: StackResources
) -> None:
    runs = Runs()
    # Nothing listens on this port: every notification attempt is refused.
    notifier = WebhookNotifier(
        f"http://127.0.0.1:{embedded.free_port()}/alerts",
        attempts=2,
        backoff_seconds=0.1,
        timeout_seconds=1,
    )
    # A forward deadline no funnel meets makes every probe fail at once.
    deadlines = {**PROBE_DEADLINES, "forward": 0.001}
    monitor = make_monitor(
        stack, resources, notifier, runs, interval=1.0, deadlines=deadlines
    )
    monitor.start()
    registry = monitor.registry
    try:
        wait_for(
            lambda: registry.get_sample_value(
                "boxoffice_canary_notifications_total",
                {"receiver": "alertmanager", "status": "firing", "result": "failed"},
            ),
            timeout=30,
            message="a failed notification",
        )
        runs_at_failure = len(runs.outcomes())
        wait_for(
            lambda: len(runs.outcomes()) >= runs_at_failure + 3,
            timeout=30,
            message="probes after the failed notification",
        )
        text = scrape(monitor)
    finally:
        monitor.stop()
        monitor.probe.close()
    assert monitor.alert.firing
    assert 'result="failed",status="firing"' in text
    assert set(runs.outcomes()) == {"failure"}


def test_funnel_gauges_read_the_stack(
    stack: embedded.EmbeddedState, resources: StackResources, make_sale: Any
) -> None:
    from prometheus_client import CollectorRegistry

    from monitors.metrics import funnel_metrics
    from monitors.poller import FunnelPoller

    sale = make_sale(stock=7, window_count=3)
    registry = CollectorRegistry()
    poller = FunnelPoller(
        stack.settings, resources, funnel_metrics(registry), [sale.sale_id]
    )
    snapshots = poller.poll()
    assert [snapshot.sale_id for snapshot in snapshots] == [sale.sale_id]

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("boxoffice_funnel_tickets_left", sale=sale.sale_id) == 7
    assert value("boxoffice_funnel_fans_waiting", sale=sale.sale_id) == 0
    assert value("boxoffice_dead_letter_messages", queue="forwarder") is not None
    assert value("boxoffice_funnel_polls_total", result="success") == 1
    assert value("boxoffice_forwarder_errors_total") is not None


def test_funnel_counts_numbered_fans(
    stack: embedded.EmbeddedState, resources: StackResources, make_sale: Any
) -> None:
    from prometheus_client import CollectorRegistry

    from monitors.metrics import funnel_metrics
    from monitors.poller import FunnelPoller
    from tests.helpers import join_fan, wait_for

    # Numbered counts every fan that joined, admitted or still waiting.
    sale = make_sale(stock=7, window_count=1)
    registry = CollectorRegistry()
    poller = FunnelPoller(
        stack.settings, resources, funnel_metrics(registry), [sale.sale_id]
    )
    for _ in range(2):
        join_fan(stack.settings, resources, sale.sale_id)

    def numbered() -> float | None:
        poller.poll()
        labels = {"sale": sale.sale_id}
        found = registry.get_sample_value(
            "boxoffice_funnel_fans_numbered_total", labels
        )
        return found if found == 2 else None

    assert wait_for(numbered, timeout=30, interval=0.5, message="2 numbered fans") == 2
