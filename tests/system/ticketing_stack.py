"""The ticketing service's process and handles, shared by its tests and fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from system import embedded, tokens
from system.stack import StackResources

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10
SESSION_SECONDS = 120


@dataclass
class TicketingStack:
    """The embedded stack, the ticketing process and handles on both."""

    state: embedded.EmbeddedState
    resources: StackResources
    dynamodb: Any
    secret: bytes
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return self.state.ticketing_url

    @property
    def metrics_url(self) -> str:
        return f"http://{embedded.HOST}:{self.state.ticketing_metrics_port}/metrics"

    def table(self, name: str) -> Any:
        return self.dynamodb.Table(getattr(self.resources, name))


@dataclass(frozen=True)
class Admission:
    """A fan admitted to a window by hand, with its purchase token."""

    sale_id: str
    fan_id: str
    window_id: str
    token: str
    claims: tokens.PurchaseClaims


def start_ticketing(
    state: embedded.EmbeddedState, port: int, metrics_port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """Start ``python -m system.ticketing`` and wait until /healthz returns 200."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "system.ticketing",
                "--port",
                str(port),
                "--metrics-port",
                str(metrics_port),
            ],
            env=embedded.service_environment(state),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"The ticketing service exited with {process.returncode}; see "
                f"{log_path}."
            )
        try:
            if httpx.get(f"http://{embedded.HOST}:{port}/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(
        f"The ticketing service did not answer within {START_TIMEOUT_SECONDS} s."
    )


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """Send SIGTERM to the process by PID, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        return process.wait()
