"""Every dashboard query returns data after a short spike and the canary.

A real Prometheus on 127.0.0.1 scrapes the embedded stack's services, the
monitor (which runs the canary every few seconds and polls the funnel) and
the Locust master of a short spike, once a second. Afterwards each panel's
PromQL runs as a range query over the observed time, with Grafana's
variables substituted as the dashboard's "All" choice would.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from system import embedded, prometheus
from tests.dashboards import grafana
from tests.helpers import wait_for

SCRAPE_INTERVAL = "1s"
CANARY_INTERVAL_SECONDS = 5.0
FUNNEL_INTERVAL_SECONDS = 1.0
# Enough canary runs for rates and quantiles over them: a rate needs two.
CANARY_RUNS = 3
SPIKE_FANS = 200
SPIKE_TIMEOUT_SECONDS = 240
MONITOR_DURATION_SECONDS = 420  # the monitor stops by itself after this
PROCESS_STOP_SECONDS = 15
# Rate windows: several scrapes, as Grafana's $__rate_interval would be.
RATE_INTERVAL = "10s"
PROMETHEUS_DASHBOARDS = [
    path for path in grafana.DASHBOARD_FILES if "cloudwatch" not in path.name
]


@dataclass(frozen=True)
class Observation:
    """A Prometheus that watched the stack, and the time span it watched."""

    url: str
    start: float
    end: float


def boxoffice(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "system.cli", *arguments]


def start_monitor(
    stack: embedded.EmbeddedState, port: int, log: Path
) -> subprocess.Popen[bytes]:
    command = boxoffice(
        "monitor",
        "--endpoint-url",
        stack.endpoint_url,
        "--stack",
        stack.stack_name,
        "--interval",
        str(CANARY_INTERVAL_SECONDS),
        "--funnel-interval",
        str(FUNNEL_INTERVAL_SECONDS),
        "--metrics-port",
        str(port),
        "--duration",
        str(MONITOR_DURATION_SECONDS),
    )
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            env=embedded.service_environment(stack),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def run_spike(stack: embedded.EmbeddedState, port: int, folder: Path) -> None:
    command = boxoffice(
        "spike",
        "--endpoint-url",
        stack.endpoint_url,
        "--stack",
        stack.stack_name,
        "--ticketing-url",
        stack.ticketing_url,
        "--fans",
        str(SPIKE_FANS),
        "--presale-seconds",
        "5",
        "--spike-seconds",
        "5",
        "--report-dir",
        str(folder),
        "--metrics-port",
        str(port),
    )
    finished = subprocess.run(
        command,
        env=embedded.service_environment(stack),
        capture_output=True,
        text=True,
        timeout=SPIKE_TIMEOUT_SECONDS,
        check=False,
    )
    # 0: every threshold met, 1: a threshold failed. Either run has figures.
    assert finished.returncode in (0, 1), finished.stdout + finished.stderr


def canary_runs(url: str) -> float:
    result = prometheus.query(url, "sum(boxoffice_canary_runs_total)")
    return float(result[0]["value"][1]) if result else 0.0


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=PROCESS_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def observation(
    stack: embedded.EmbeddedState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observation]:
    folder = tmp_path_factory.mktemp("panels")
    monitor_port = embedded.free_port()
    locust_port = embedded.free_port()
    url = prometheus.start(
        stack,
        port=embedded.free_port(),
        scrape_interval=SCRAPE_INTERVAL,
        extra_targets={
            prometheus.MONITOR_JOB: [f"{embedded.HOST}:{monitor_port}"],
            prometheus.LOCUST_JOB: [f"{embedded.HOST}:{locust_port}"],
        },
    )
    try:
        start = time.time()
        monitor = start_monitor(stack, monitor_port, folder / "monitor.log")
        try:
            run_spike(stack, locust_port, folder / "spike")
            wait_for(
                lambda: canary_runs(url) >= CANARY_RUNS,
                timeout=CANARY_RUNS * CANARY_INTERVAL_SECONDS * 4,
                message=f"{CANARY_RUNS} canary runs in Prometheus",
            )
        finally:
            stop_process(monitor)
        time.sleep(3)  # a few more scrapes of the services
        yield Observation(url, start, time.time())
    finally:
        prometheus.stop(stack)


def panel_queries(builtins: dict[str, str] | None = None) -> list[grafana.Query]:
    queries = []
    for path in PROMETHEUS_DASHBOARDS:
        queries.extend(grafana.prometheus_queries(grafana.load(path), builtins))
    return queries


@pytest.mark.slow
@pytest.mark.parametrize(
    "where",
    [(query.dashboard, query.where) for query in panel_queries()],
    ids=lambda where: f"{where[0]}: {where[1]}",
)
def test_panel_query_returns_data(
    observation: Observation, where: tuple[str, str]
) -> None:
    span = int(observation.end - observation.start) + 1
    # $__range is the whole observed span, as when Grafana shows exactly it.
    builtins = {"__rate_interval": RATE_INTERVAL, "__range": f"{span}s"}
    (query,) = [
        query
        for query in panel_queries(builtins)
        if (query.dashboard, query.where) == where
    ]

    series = prometheus.query(
        observation.url,
        query.expr,
        start=observation.start,
        end=observation.end,
        step="1s",
    )
    values = [float(value) for one in series for _at, value in one["values"]]

    assert series, f"no series for {query}"
    assert any(math.isfinite(value) for value in values), f"only NaN for {query}"
