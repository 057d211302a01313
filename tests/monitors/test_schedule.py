"""The monitor's schedule with a stub probe: skips, errors and /metrics.

A stub replaces the probe here because only a stub can make a probe
outlast its interval, or raise, on cue; the real probe runs in
test_monitor.py.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from monitors.monitor import Monitor, MonitorConfig
from monitors.notify import WebhookNotifier
from monitors.receiver import WebhookReceiver
from synthetic.config import ProbeConfig
from synthetic.result import PASSED, ProbeResult, StageResult


@dataclass
class StubProbe:
    """Return a healthy result after ``seconds``, or raise if ``raises`` is set."""

    seconds: float = 0.0
    raises: bool = False
    config: ProbeConfig = field(default_factory=ProbeConfig)
    settings: Any = None
    resources: Any = None
    running: int = 0
    max_concurrent: int = 0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        @dataclass
        class Resources:
            stack_name: str = "stub-stack"

        self.resources = Resources()

    def run(self) -> ProbeResult:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.max_concurrent = max(self.max_concurrent, self.running)
        try:
            time.sleep(self.seconds)
            if self.raises:
                raise RuntimeError("stub probe failure")
            return ProbeResult(
                probe_id="stub",
                sale_id="canary",
                inject_at="join",
                started_at=time.time(),
                stages=[StageResult("join", PASSED, self.seconds)],
                duration_seconds=self.seconds,
            )
        finally:
            with self.lock:
                self.running -= 1


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def start(probe: StubProbe, **overrides: Any) -> Monitor:
    config = MonitorConfig(
        **{
            "interval_seconds": 0.4,
            "jitter_seconds": 0,
            "funnel_interval_seconds": None,
            "metrics_port": None,
            **overrides,
        }
    )
    monitor = Monitor(probe, config)  # type: ignore[arg-type]
    monitor.start()
    return monitor


def test_running_probe_makes_next_run_skip() -> None:
    probe = StubProbe(seconds=1.0)
    monitor = start(probe)
    try:
        time.sleep(2.6)
    finally:
        monitor.stop()
    registry = monitor.registry
    skipped = sample(
        registry, "boxoffice_canary_runs_total", sale="canary", result="skipped"
    )
    succeeded = sample(
        registry, "boxoffice_canary_runs_total", sale="canary", result="success"
    )
    assert probe.max_concurrent == 1
    assert skipped >= 2
    assert succeeded >= 2


def test_monitor_survives_probe_errors() -> None:
    probe = StubProbe(raises=True)
    receiver = WebhookReceiver().start()
    notifier = WebhookNotifier(receiver.url)
    config = MonitorConfig(
        interval_seconds=0.3,
        jitter_seconds=0,
        funnel_interval_seconds=None,
        metrics_port=None,
    )
    monitor = Monitor(probe, config, notifiers=[notifier])  # type: ignore[arg-type]
    monitor.start()
    try:
        fired = receiver.wait_for(lambda bodies: len(bodies) >= 1, timeout=10)
        calls_at_alert = probe.calls
        time.sleep(1.0)
        assert probe.calls > calls_at_alert, "the schedule stopped after errors"
    finally:
        monitor.stop()
        receiver.stop()
    errors = sample(
        monitor.registry, "boxoffice_canary_runs_total", sale="canary", result="error"
    )
    assert errors >= 3
    assert fired[0]["status"] == "firing"
    assert fired[0]["alerts"][0]["annotations"]["description"] == "the probe raised"
    assert monitor.alert.firing


def test_metrics_endpoint_serves_canary_metrics() -> None:
    probe = StubProbe()
    monitor = start(probe, metrics_port=0, interval_seconds=30)
    try:
        deadline = time.monotonic() + 10
        while probe.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        response = httpx.get(f"http://127.0.0.1:{monitor.metrics_port}/metrics")
    finally:
        monitor.stop()
    text = response.text
    assert response.status_code == 200
    assert 'boxoffice_canary_runs_total{result="success",sale="canary"} 1.0' in text
    assert 'boxoffice_canary_interval_seconds{sale="canary"} 30.0' in text
    assert "boxoffice_canary_last_success_timestamp_seconds" in text
    assert "boxoffice_canary_stage_duration_seconds_bucket{" in text
    assert 'boxoffice_canary_failing{sale="canary"} 0.0' in text


def test_invalid_interval_is_rejected() -> None:
    from monitors.errors import InvalidMonitorConfigError

    with pytest.raises(InvalidMonitorConfigError, match="Interval 0"):
        MonitorConfig(interval_seconds=0)
