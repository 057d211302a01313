"""A local Prometheus next to the embedded stack, configured from the dashboards.

``render_config`` turns ``dashboards/prometheus.yml`` into a configuration
for one machine: each job's targets move into a file-based service
discovery file that can be rewritten while Prometheus runs (Prometheus
rereads it), and the rule files become absolute paths. ``start`` runs the
Debian package's ``/usr/bin/prometheus`` on 127.0.0.1 with that
configuration and records its PID in the embedded state, so ``boxoffice
down`` stops it with the rest.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from system import embedded
from system.errors import PrometheusError

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[1]
CONFIG_TEMPLATE = REPOSITORY / "dashboards" / "prometheus.yml"
BINARY = "/usr/bin/prometheus"
DEFAULT_PORT = 9090
START_TIMEOUT_SECONDS = 30
FOLDER = "prometheus"

# Scrape jobs of dashboards/prometheus.yml.
MONITOR_JOB = "boxoffice-monitor"
WINDOWS_JOB = "boxoffice-windows"
TICKETING_JOB = "boxoffice-ticketing"
LOCUST_JOB = "boxoffice-locust"
JOBS = (MONITOR_JOB, WINDOWS_JOB, TICKETING_JOB, LOCUST_JOB)


def embedded_targets(state: embedded.EmbeddedState) -> dict[str, list[str]]:
    """Return the scrape targets of the services the embedded stack runs."""
    return {
        WINDOWS_JOB: [f"{embedded.HOST}:{state.processor_metrics_port}"],
        TICKETING_JOB: [f"{embedded.HOST}:{state.ticketing_metrics_port}"],
    }


def render_config(
    folder: Path,
    targets: dict[str, list[str]],
    *,
    template: Path = CONFIG_TEMPLATE,
    scrape_interval: str | None = None,
) -> Path:
    """Write a Prometheus configuration into ``folder``; return its path.

    ``targets`` replaces the targets of the jobs it names; the other jobs
    keep the template's. ``scrape_interval`` (for example ``"1s"``)
    replaces the template's scrape and rule evaluation intervals.
    """
    config = yaml.safe_load(template.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    if scrape_interval is not None:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    config["rule_files"] = [
        str((template.parent / pattern).resolve())
        for pattern in config.get("rule_files", [])
    ]
    for job in config["scrape_configs"]:
        name = job["job_name"]
        defaults = [
            t for group in job.pop("static_configs", []) for t in group["targets"]
        ]
        write_targets(folder, name, targets.get(name, defaults))
        job["file_sd_configs"] = [
            {"files": [str(_targets_file(folder, name))], "refresh_interval": "5s"}
        ]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_targets(folder: Path, job: str, targets: list[str]) -> None:
    """Point ``job`` of a rendered configuration at ``targets`` (host:port).

    A running Prometheus picks the change up within its refresh interval.
    """
    path = _targets_file(folder, job)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so Prometheus never reads a half-written file.
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps([{"targets": targets, "labels": {}}], indent=2))
    partial.replace(path)


def start(
    state: embedded.EmbeddedState,
    *,
    port: int | None = None,
    scrape_interval: str | None = None,
    extra_targets: dict[str, list[str]] | None = None,
) -> str:
    """Start Prometheus on 127.0.0.1 for the embedded stack; return its URL.

    Uses ``port`` or, when omitted, 9090 if it is free and any free port
    otherwise. Raises ``PrometheusError`` when the binary is missing, the
    port is taken or Prometheus does not become ready.
    """
    binary = _binary()
    chosen = port or (DEFAULT_PORT if not embedded.port_in_use(DEFAULT_PORT) else 0)
    chosen = chosen or embedded.free_port()
    if embedded.port_in_use(chosen):
        raise PrometheusError(
            f"Port {chosen} on {embedded.HOST} is already in use. Pass another "
            "--prometheus-port, or omit it to pick a free one."
        )
    folder = Path(state.home) / FOLDER
    targets = {**embedded_targets(state), **(extra_targets or {})}
    config = render_config(folder, targets, scrape_interval=scrape_interval)
    pid = _launch(binary, config, folder, chosen)
    state.pids["prometheus"] = pid
    state.prometheus_port = chosen
    state.save()
    url = f"http://{embedded.HOST}:{chosen}"
    _wait_ready(url, pid)
    logger.info("Prometheus is ready on %s (pid %d)", url, pid)
    return url


def stop(state: embedded.EmbeddedState) -> bool:
    """Stop the Prometheus recorded in ``state``; return whether it ran."""
    state.prometheus_port = 0
    return embedded.stop_service(state, "prometheus")


def query(url: str, expression: str, **parameters: Any) -> list[dict[str, Any]]:
    """Run a PromQL query against ``url``; return the result list.

    With ``start``, ``end`` and ``step`` it is a range query, otherwise an
    instant one.
    """
    endpoint = "query_range" if "start" in parameters else "query"
    arguments = urllib.parse.urlencode({"query": expression, **parameters})
    request = f"{url}/api/v1/{endpoint}?{arguments}"
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise PrometheusError(
            f"Prometheus at {url} rejected the query {expression!r}: {detail}"
        ) from exc
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _binary() -> str:
    found = shutil.which(BINARY) or shutil.which("prometheus")
    if found is None:
        raise PrometheusError(
            f"Prometheus was not found at {BINARY} or on PATH. Install the "
            "Debian package with `apt-get install prometheus` (do not start "
            "its service; `boxoffice up --prometheus` runs its own)."
        )
    return found


def _launch(binary: str, config: Path, folder: Path, port: int) -> int:
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={embedded.HOST}:{port}",
    ]
    log = open(folder / "prometheus.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    return process.pid


def _wait_ready(url: str, pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not embedded._alive(pid):
            raise PrometheusError(
                f"Prometheus (pid {pid}) exited before {url} was ready. See "
                "prometheus.log in the state folder's prometheus/ folder."
            )
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise PrometheusError(
        f"Prometheus at {url} was not ready within {START_TIMEOUT_SECONDS} s."
    )


def _targets_file(folder: Path, job: str) -> Path:
    return folder / "targets" / f"{job}.json"
