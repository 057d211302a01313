"""Start and stop the Locust processes of a spike: one, or a master and N workers.

Every process is a child of this one, bound to 127.0.0.1, logs into the
report folder and is stopped by its PID.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loadtests import outputs
from loadtests.errors import LoadGeneratorError
from system.embedded import free_port

logger = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
HOST = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 10.0


class LocustProcesses:
    """The Locust processes of one run."""

    def __init__(
        self, folder: Path, workers: int, metrics_port: int | None = None
    ) -> None:
        self.folder = folder
        self.workers = workers
        self.metrics_port = metrics_port
        self.master: subprocess.Popen[bytes] | None = None
        self.worker_processes: list[subprocess.Popen[bytes]] = []

    def start(self, plan_path: Path, run_time_seconds: float) -> None:
        """Start Locust headless; ``run_time_seconds`` is its hard time limit."""
        users = max(self.workers, 1)
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{int(run_time_seconds)}s",
            "--stop-timeout",
            "5",
            "--spike-plan",
            str(plan_path),
            "--spike-out",
            str(self.folder),
            "--html",
            str(self.folder / f"{outputs.LOCUST_PREFIX}.html"),
            "--csv",
            str(self.folder / outputs.LOCUST_PREFIX),
            "--csv-full-history",
            "--only-summary",
            "--loglevel",
            "INFO",
        ]
        if self.metrics_port is not None:
            command += ["--metrics-port", str(self.metrics_port)]
        port = free_port() if self.workers else 0
        if self.workers:
            command += [
                "--master",
                "--master-bind-host",
                HOST,
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(self.workers),
            ]
        self.master = self._spawn(command, "locust-master.log")
        for index in range(self.workers):
            worker = [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--worker",
                "--master-host",
                HOST,
                "--master-port",
                str(port),
                "--loglevel",
                "INFO",
            ]
            self.worker_processes.append(
                self._spawn(worker, f"locust-worker-{index}.log")
            )
        logger.info(
            "Started Locust (pid %d) with %d workers", self.master.pid, self.workers
        )

    def running(self) -> bool:
        """Whether the master (or the single process) is still running."""
        return self.master is not None and self.master.poll() is None

    def wait(self, timeout: float) -> int | None:
        """Wait for the master to exit; return its exit code, or None on timeout."""
        assert self.master is not None
        try:
            return self.master.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop every process still running, by PID: SIGTERM, then SIGKILL."""
        processes = [p for p in (self.master, *self.worker_processes) if p]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.warning(
                    "Locust process %d did not stop; killing it", process.pid
                )
                process.kill()
                process.wait()

    def _spawn(self, command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        environment = dict(os.environ)
        # The fans use their own Cognito credentials; nothing in Locust may
        # reach an instance metadata address looking for others.
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        log = (self.folder / log_name).open("ab")
        try:
            return subprocess.Popen(
                command,
                cwd=self.folder,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise LoadGeneratorError(
                f"Could not start Locust ({command[0]} -m locust): {exc}"
            ) from exc
        finally:
            log.close()
