"""Serve a finished load test's threshold verdicts until Prometheus reads them.

A spike's thresholds are judged after Locust has exited, from the fans'
records and the stack's final state, so the Locust master cannot publish
them. ``serve_thresholds`` publishes them from the process that judged the
run instead: on the port the master served, so Prometheus finds them under
the same scrape target, and only until one scrape has read them.

This module does not import Locust, which patches the standard library with
gevent when imported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric

from monitors.metrics import loadtest_metrics
from system.errors import ExporterError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
POLL_SECONDS = 0.1


class ScrapeClock:
    """A collector with no metrics that notes when ``/metrics`` was last read."""

    def __init__(self) -> None:
        self.last_scrape = 0.0

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        self.last_scrape = time.time()
        return []


def serve_thresholds(
    passed: Mapping[str, bool],
    port: int,
    *,
    addr: str = HOST,
    timeout_seconds: float,
) -> bool:
    """Serve each threshold's status (1 passed, 0 failed) until one scrape.

    Blocks until ``/metrics`` on ``addr:port`` has been read once, or for at
    most ``timeout_seconds``; returns whether it was read.
    """
    registry = CollectorRegistry()
    metrics = loadtest_metrics(registry)
    for name, result in passed.items():
        metrics.threshold_status.labels(name=name).set(1 if result else 0)
    clock = ScrapeClock()
    registry.register(clock)
    try:
        server, _thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise ExporterError(
            f"Could not serve the threshold verdicts on {addr}:{port}: {exc}. "
            "Pass another port."
        ) from exc
    try:
        deadline = time.monotonic() + timeout_seconds
        while clock.last_scrape == 0.0:
            if time.monotonic() >= deadline:
                logger.warning(
                    "Nothing read the threshold verdicts on %s:%d within %.0f s",
                    addr,
                    port,
                    timeout_seconds,
                )
                return False
            time.sleep(POLL_SECONDS)
        return True
    finally:
        server.shutdown()
        server.server_close()
