"""The load-test exporter inside real Locust runners: local, master and worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

DRIVER = Path(__file__).with_name("exporter_driver.py")
SALE = "exporter-test"
DRIVER_TIMEOUT_SECONDS = 60

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def run_scenario(name: str) -> dict[str, str]:
    """Run one scenario of the driver in a child process; return its output."""
    completed = subprocess.run(
        [sys.executable, str(DRIVER), name],
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, str] = json.loads(completed.stdout.splitlines()[-1])
    return result


def parse(text: str) -> Samples:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples[(metric, tuple(sorted(labels.items())))]


@pytest.fixture(scope="module")
def local_output() -> dict[str, str]:
    return run_scenario("local")


@pytest.fixture(scope="module")
def local(local_output: dict[str, str]) -> Samples:
    return parse(local_output["running"])


def test_local_run_counts_users(local: Samples) -> None:
    assert value(local, "boxoffice_loadtest_users") == 3
    assert value(local, "boxoffice_loadtest_arrivals_total") == 3


def test_active_fans_replace_users(local_output: dict[str, str]) -> None:
    crowd = parse(local_output["crowd"])

    assert value(crowd, "boxoffice_loadtest_users") == 250


def test_local_run_counts_requests(local: Samples) -> None:
    polls = value(local, "boxoffice_loadtest_requests_total", name="poll")
    joins = value(local, "boxoffice_loadtest_requests_total", name="join")
    assert polls >= 3
    assert value(local, "boxoffice_loadtest_request_failures_total", name="poll") == 0
    failed_joins = value(
        local, "boxoffice_loadtest_request_failures_total", name="join"
    )
    assert failed_joins == joins


def test_local_run_latency_in_seconds(local: Samples) -> None:
    bucket = "boxoffice_loadtest_request_duration_seconds_bucket"
    polls = value(local, "boxoffice_loadtest_requests_total", name="poll")
    joins = value(local, "boxoffice_loadtest_requests_total", name="join")
    # 30 ms lands in the 0.05 s bucket and 3000 ms above 2.5 s.
    assert value(local, bucket, name="poll", le="0.025") == 0
    assert value(local, bucket, name="poll", le="0.05") == polls
    assert value(local, bucket, name="join", le="2.5") == 0
    assert value(local, bucket, name="join", le="5.0") == joins
    total = value(local, "boxoffice_loadtest_request_duration_seconds_sum", name="join")
    assert total == pytest.approx(3.0 * joins)


def test_local_run_queue_time_and_threshold(local: Samples) -> None:
    queue_sum = "boxoffice_loadtest_time_in_queue_seconds_sum"
    assert value(local, queue_sum, sale=SALE) == 12.5
    status = "boxoffice_loadtest_threshold_status"
    assert value(local, status, name="p95_join_below_2s") == 0


def test_inversions_counted_at_stop() -> None:
    output = run_scenario("stop")
    before, after = parse(output["before"]), parse(output["after"])

    inversions = "boxoffice_loadtest_fairness_inversions_total"
    assert value(before, inversions, sale=SALE) == 0
    assert value(after, inversions, sale=SALE) == 1
    count = "boxoffice_loadtest_time_in_queue_seconds_count"
    assert value(after, count, sale=SALE) == 3


def test_master_adds_worker_reports() -> None:
    output = run_scenario("distributed")
    samples = parse(output["running"])

    assert output["worker_port"] == "None"  # a worker serves nothing
    assert value(samples, "boxoffice_loadtest_arrivals_total") == 2
    assert value(samples, "boxoffice_loadtest_users") == 40  # the worker's fans
    assert value(samples, "boxoffice_loadtest_requests_total", name="poll") >= 2
    count = "boxoffice_loadtest_time_in_queue_seconds_count"
    assert value(samples, count, sale=SALE) == 1


def test_install_errors_name_the_fix() -> None:
    found: dict[str, Any] = run_scenario("errors")

    assert "create_local_runner" in found["no_runner"]
    assert found["port"] in found["taken_port"]
    assert "another port" in found["taken_port"]


def test_waits_for_final_scrape() -> None:
    output = run_scenario("final_scrape")

    assert output["scraped"] == "True"
    assert 0.9 <= float(output["waited"]) < 5.0
    assert output["unread_scraped"] == "False"  # gave up after its timeout
