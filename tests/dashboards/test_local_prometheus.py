"""`boxoffice up --prometheus`: a local Prometheus next to the embedded stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from system import embedded, prometheus
from tests.helpers import wait_for

COMMAND_TIMEOUT_SECONDS = 180


def boxoffice(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "system.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
    )


def targets(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=5) as response:
        found: list[dict[str, Any]] = json.load(response)["data"]["activeTargets"]
    return found


def jobs_if_all(url: str) -> dict[str, dict[str, Any]] | None:
    """Return the active targets by job once all four jobs are discovered."""
    by_job = {target["labels"]["job"]: target for target in targets(url)}
    return by_job if len(by_job) == len(prometheus.JOBS) else None


@pytest.fixture(scope="module")
def local_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, embedded.EmbeddedState, subprocess.CompletedProcess[str]]]:
    home = tmp_path_factory.mktemp("prometheus-home")
    port = embedded.free_port()
    started = boxoffice(
        "up", "--home", str(home), "--prometheus", "--prometheus-port", str(port)
    )
    state = embedded.EmbeddedState.load(home)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert state is not None
        yield home, state, started
    finally:
        if state is not None:
            embedded.stop(state)


def test_up_starts_prometheus(local_stack: Any) -> None:
    _home, state, started = local_stack
    url = f"http://127.0.0.1:{state.prometheus_port}"

    assert embedded._alive(state.pids["prometheus"])
    assert f"prometheus:        {url}" in started.stdout
    with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
        assert response.status == 200


def test_prometheus_scrapes_embedded_services(local_stack: Any) -> None:
    _home, state, _started = local_stack
    url = f"http://127.0.0.1:{state.prometheus_port}"
    by_job = wait_for(
        lambda: jobs_if_all(url),
        timeout=30,
        message="Prometheus to discover the four jobs",
    )

    assert by_job[prometheus.WINDOWS_JOB]["scrapeUrl"] == (
        f"http://127.0.0.1:{state.processor_metrics_port}/metrics"
    )
    assert by_job[prometheus.TICKETING_JOB]["scrapeUrl"] == (
        f"http://127.0.0.1:{state.ticketing_metrics_port}/metrics"
    )
    assert set(by_job) == set(prometheus.JOBS)
    up = wait_for(
        lambda: prometheus.query(url, f'up{{job="{prometheus.TICKETING_JOB}"}} == 1'),
        timeout=30,
        message="Prometheus to scrape the ticketing service",
    )
    assert up


def test_prometheus_binds_loopback_only(local_stack: Any) -> None:
    _home, state, _started = local_stack
    command = Path(f"/proc/{state.pids['prometheus']}/cmdline").read_bytes()

    assert f"--web.listen-address=127.0.0.1:{state.prometheus_port}".encode() in (
        command
    )


def test_down_stops_prometheus(local_stack: Any) -> None:
    home, state, _started = local_stack
    pid = state.pids["prometheus"]

    stopped = boxoffice("down", "--home", str(home))

    assert stopped.returncode == 0, stopped.stderr
    assert f"prometheus (pid {pid})" in stopped.stdout
    assert not embedded._alive(pid)
