"""`boxoffice canary` and `boxoffice monitor` as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from system import embedded

BOXOFFICE = [sys.executable, "-m", "system.cli"]


def run(stack: embedded.EmbeddedState, *argv: str, timeout: float = 90) -> Any:
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("BOXOFFICE_STACK", None)
    return subprocess.run(
        [*BOXOFFICE, *argv, "--home", stack.home],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_canary_exits_0_when_healthy(stack: embedded.EmbeddedState) -> None:
    completed = run(stack, "canary", "--json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout)
    assert result["healthy"] is True
    assert result["failed_stage"] is None
    assert [stage["outcome"] for stage in result["stages"]] == ["passed"] * 4


def test_canary_names_failed_stage(stack: embedded.EmbeddedState) -> None:
    completed = run(stack, "canary", "--deadline", "forward=0.001")
    assert completed.returncode == 1
    assert "canary UNHEALTHY" in completed.stdout
    assert "stage forward timed out" in completed.stderr


def test_canary_reads_a_deployed_stack_by_name(
    stack: embedded.EmbeddedState,
) -> None:
    # The deployed-stack path: --stack and --endpoint-url, outputs read from
    # CloudFormation, credentials from the environment. MiniStack plays AWS.
    env = dict(os.environ)
    env.pop("BOXOFFICE_HOME", None)
    completed = subprocess.run(
        [
            *BOXOFFICE,
            "canary",
            "--stack",
            stack.stack_name,
            "--region",
            "us-east-1",
            "--endpoint-url",
            stack.endpoint_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout)["healthy"] is True


def test_canary_without_stack_says_how_to_start_one(tmp_path: Any) -> None:
    env = dict(os.environ)
    completed = subprocess.run(
        [*BOXOFFICE, "canary", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert completed.returncode == 2
    assert "boxoffice up" in completed.stderr


def test_monitor_command_runs_probes(stack: embedded.EmbeddedState) -> None:
    completed = run(
        stack,
        "monitor",
        "--interval",
        "3",
        "--duration",
        "8",
        "--metrics-port",
        "0",
    )
    assert completed.returncode == 0, completed.stderr
    assert "Monitoring stack" in completed.stdout
    assert "canary success" in completed.stdout
