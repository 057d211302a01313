"""Serving a finished load test's threshold verdicts to one scrape."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtests.threshold_metrics import serve_thresholds
from system.embedded import free_port
from system.errors import ExporterError


def scrape_later(port: int, delay: float, into: list[str]) -> threading.Timer:
    """Scrape ``port`` after ``delay`` seconds, appending the text to ``into``."""

    def scrape() -> None:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            into.append(response.read().decode())

    timer = threading.Timer(delay, scrape)
    timer.start()
    return timer


def test_serves_until_scraped() -> None:
    port = free_port()
    texts: list[str] = []
    scraper = scrape_later(port, 0.5, texts)
    started = time.monotonic()

    scraped = serve_thresholds(
        {"join_p95_seconds < 2": True, "oversold == 0": False},
        port,
        timeout_seconds=10,
    )
    scraper.join()

    assert scraped is True
    assert time.monotonic() - started < 5
    samples = {
        sample.labels["name"]: sample.value
        for family in text_string_to_metric_families(texts[0])
        for sample in family.samples
        if sample.name == "boxoffice_loadtest_threshold_status"
    }
    assert samples == {"join_p95_seconds < 2": 1.0, "oversold == 0": 0.0}


def test_gives_up_without_scrape() -> None:
    started = time.monotonic()

    scraped = serve_thresholds({"a < 1": True}, free_port(), timeout_seconds=0.5)

    assert scraped is False
    assert time.monotonic() - started < 3


def test_taken_port_raises() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        with pytest.raises(ExporterError, match=str(port)):
            serve_thresholds({"a < 1": True}, port, timeout_seconds=0.5)
