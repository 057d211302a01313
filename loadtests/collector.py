"""The Locust master's side of a spike: gather the workers' results into files.

Workers send progress once a second, then their fans' records in chunks, then
a final message with their health. The collector writes ``progress.json``
every second for the live display, and when every worker is done it writes
the fans, the position samples, the time series and the generator's health,
and stops the run. Without workers (a local runner) the crowd's messages
reach the collector in the same process.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import MasterRunner

from loadtests import outputs
from loadtests.plan import SpikePlan
from loadtests.series import Series

logger = logging.getLogger(__name__)

PROGRESS_MESSAGE = "spike_progress"
FANS_MESSAGE = "spike_fans"
DONE_MESSAGE = "spike_done"
WRITE_INTERVAL_SECONDS = 1.0
# After the last worker is done, Locust gets this long to write its reports.
QUIT_DELAY_SECONDS = 0.5


class Collector:
    """Merge the workers' progress and results and write them to ``folder``."""

    def __init__(
        self, environment: Environment, folder: Path, workers: int, plan: SpikePlan
    ) -> None:
        self.environment = environment
        self.folder = folder
        self.workers = workers
        self.plan = plan
        self.series = Series()
        self.counters: dict[int, dict[str, int]] = {}
        self.health: dict[int, dict[str, Any]] = {}
        self.cpu_max_percent = 0.0
        self.users_max = 0
        self.positions: list[Any] = []
        self.done = False
        self._fans = (folder / outputs.FANS_FILE).open("w")
        self._writer: gevent.Greenlet | None = None

    def register(self) -> None:
        runner = self.environment.runner
        assert runner is not None
        runner.register_message(PROGRESS_MESSAGE, self.on_progress)
        runner.register_message(FANS_MESSAGE, self.on_fans)
        runner.register_message(DONE_MESSAGE, self.on_done)

    def start(self, plan: SpikePlan) -> None:
        """Start writing progress for the run that starts at ``plan.start_at``."""
        self.plan = plan
        if self._writer is None:
            self._writer = gevent.spawn(self._write_loop)

    def on_progress(self, environment: Environment, msg: Any, **_: Any) -> None:
        data = msg.data
        self.counters[int(data["worker"])] = data["counters"]
        self.series.add(data["series"], source=str(data["worker"]))
        self.cpu_max_percent = max(self.cpu_max_percent, data.get("cpu_percent", 0.0))

    def on_fans(self, environment: Environment, msg: Any, **_: Any) -> None:
        for record in msg.data["fans"]:
            self._fans.write(json.dumps(record) + "\n")
        self.positions.extend(msg.data.get("samples", []))

    def on_done(self, environment: Environment, msg: Any, **_: Any) -> None:
        health = msg.data
        self.health[int(health["worker"])] = health
        logger.info(
            "Worker %s is done (%d of %d)",
            health["worker"],
            len(self.health),
            self.workers,
        )
        if len(self.health) >= self.workers and not self.done:
            self.finish()

    def finish(self) -> None:
        """Write the results and stop the Locust run."""
        self.done = True
        self._fans.close()
        outputs.write_json(self.folder / outputs.POSITIONS_FILE, self.positions)
        outputs.write_json(self.folder / outputs.SERIES_FILE, self.series.to_json())
        outputs.write_json(self.folder / outputs.GENERATOR_FILE, self.generator())
        self._write_progress()
        runner = self.environment.runner
        assert runner is not None
        gevent.spawn_later(QUIT_DELAY_SECONDS, runner.quit)

    def generator(self) -> dict[str, Any]:
        """Return the load generator's health: CPU, users, arrivals, lag."""
        runner = self.environment.runner
        assert runner is not None
        options = self.environment.parsed_options
        cpu_warning = bool(runner.cpu_warning_emitted)
        if isinstance(runner, MasterRunner):
            cpu_warning = cpu_warning or bool(runner.worker_cpu_warning_emitted)
        worker_warnings = any(h.get("cpu_warning") for h in self.health.values())
        return {
            "workers_expected": self.workers,
            "workers_done": len(self.health),
            "cpu_warning": cpu_warning or worker_warnings,
            "cpu_max_percent": self.cpu_max_percent,
            "users_requested": int(getattr(options, "num_users", 0) or 0),
            "users_reached": self.users_max,
            "workers": [self.health[key] for key in sorted(self.health)],
        }

    def _write_loop(self) -> None:
        while not self.done:
            runner = self.environment.runner
            if runner is not None:
                self.users_max = max(self.users_max, runner.user_count)
                self.cpu_max_percent = max(
                    self.cpu_max_percent, float(runner.current_cpu_usage)
                )
            self._write_progress()
            gevent.sleep(WRITE_INTERVAL_SECONDS)

    def _write_progress(self) -> None:
        totals: dict[str, int] = {}
        for counters in self.counters.values():
            for name, value in counters.items():
                totals[name] = totals.get(name, 0) + int(value)
        runner = self.environment.runner
        stats = runner.stats.total if runner is not None else None
        outputs.write_json(
            self.folder / outputs.PROGRESS_FILE,
            {
                "start_at": self.plan.start_at,
                "now": time.time(),
                "expected_seconds": self.plan.expected_seconds(),
                "cap_seconds": self.plan.duration_cap_seconds,
                "counters": totals,
                "requests": stats.num_requests if stats else 0,
                "failures": stats.num_failures if stats else 0,
                "workers_reporting": len(self.counters),
                "workers_done": len(self.health),
                "done": self.done,
            },
        )
