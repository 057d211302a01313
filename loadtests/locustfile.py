"""Locust entry point of the on-sale spike.

``boxoffice spike`` runs it for you. To run it by hand, on this machine or
with workers on others::

    locust -f loadtests/locustfile.py --headless --users 1 --spawn-rate 1 \\
        --spike-plan reports/run/plan.json --spike-out reports/run

The plan file (``boxoffice spike --write-plan``) says which stack and sale to
hit and how the crowd arrives. Each Locust process runs one ``FanCrowd`` user,
which drives that process's share of the fans; give ``--users`` the number of
processes that run fans (the workers, or 1 without them).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gevent
from gevent import monkey
from locust import User, constant, events, task
from locust.env import Environment
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

# Locust patches the standard library with gevent before it loads this file.
# botocore, imported by the modules below, must see the patched socket and
# ssl modules, or every request would block the whole process.
if not monkey.is_module_patched("socket"):
    raise RuntimeError(
        "gevent has not patched the standard library; run this file with the "
        "locust command, which patches it before loading the locustfile."
    )

from loadtests import exporter
from loadtests.collector import (
    DONE_MESSAGE,
    FANS_MESSAGE,
    PROGRESS_MESSAGE,
    Collector,
)
from loadtests.crowd import Crowd
from loadtests.plan import SpikePlan

logger = logging.getLogger(__name__)

# With no start time in the plan, fans start arriving this long after the
# test starts, so every worker has received the plan first.
START_LEAD_SECONDS = 2.0
FANS_PER_MESSAGE = 500
IDLE_SECONDS = 60.0
# How long the master keeps /metrics up at exit for Prometheus to read the
# last figures: a few scrape intervals.
FINAL_SCRAPE_TIMEOUT_SECONDS = 15.0

_collector: Collector | None = None


def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("spike")
    group.add_argument(
        "--spike-plan",
        default="",
        help="plan.json of the run (written by boxoffice spike); master or "
        "single process only, workers get the plan from the master",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve the load test's Prometheus metrics on 127.0.0.1:PORT "
        "(master or single process; default: none)",
    )
    group.add_argument(
        "--spike-out",
        default="",
        help="folder for progress.json and the fans' records (default: the "
        "plan's folder)",
    )


def _on_init(environment: Environment, **_: Any) -> None:
    global _collector
    runner = environment.runner
    options = environment.parsed_options
    metrics_port = getattr(options, "metrics_port", None)
    if isinstance(runner, WorkerRunner):
        # A worker serves nothing: it sends its figures with its reports.
        exporter.install(environment)
    elif metrics_port is not None:
        exporter.install(
            environment,
            metrics_port,
            final_scrape_timeout_seconds=FINAL_SCRAPE_TIMEOUT_SECONDS,
        )
    if not isinstance(runner, MasterRunner | LocalRunner):
        return
    options = environment.parsed_options
    if options is None or not options.spike_plan:
        raise RuntimeError("Pass --spike-plan PATH to the Locust master.")
    plan_path = Path(options.spike_plan)
    plan = SpikePlan.read(plan_path)
    # Every custom option travels from the master to the workers with the
    # spawn message, so remote workers need no copy of the file.
    options.spike_plan_json = plan.to_json()
    folder = Path(options.spike_out or plan_path.parent)
    workers = int(options.expect_workers) if isinstance(runner, MasterRunner) else 1
    _collector = Collector(environment, folder, workers, plan)
    _collector.register()


def _on_test_start(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if _collector is None or isinstance(runner, WorkerRunner):
        return
    options = environment.parsed_options
    assert options is not None
    plan = SpikePlan.from_json(options.spike_plan_json)
    now = time.time()
    if plan.start_at < now + 0.5:
        if plan.start_at:
            logger.warning(
                "The plan's start time passed %.1f s ago; starting now instead",
                now - plan.start_at,
            )
        plan = plan.with_start(now + START_LEAD_SECONDS)
        options.spike_plan_json = plan.to_json()
    _collector.start(plan)


# Locust's EventHook.add_listener has no type annotations.
events.init_command_line_parser.add_listener(_add_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]


class FanCrowd(User):
    """Drive this process's share of the fans, then stay idle until stopped.

    One user per process does the work; a second one in the same process
    only idles, so ``--users`` above the process count adds nothing.
    """

    wait_time = constant(1)
    _started = False

    @task
    def run_crowd(self) -> None:
        if FanCrowd._started:
            gevent.sleep(IDLE_SECONDS)
            return
        FanCrowd._started = True
        environment = self.environment
        runner = environment.runner
        plan = SpikePlan.from_json(environment.parsed_options.spike_plan_json)
        if isinstance(runner, WorkerRunner):
            worker, workers = (
                runner.worker_index,
                int(environment.parsed_options.expect_workers),
            )
        else:
            worker, workers = 0, 1

        def send(data: dict[str, Any]) -> None:
            data["cpu_percent"] = float(runner.current_cpu_usage)
            runner.send_message(PROGRESS_MESSAGE, data)

        crowd = Crowd(
            plan,
            worker,
            workers,
            environment.events.request.fire,
            on_progress=send,
            exporter=exporter.find(environment),
        )
        crowd.run()
        result = crowd.result()
        records = result["fans"]
        for start in range(0, max(len(records), 1), FANS_PER_MESSAGE):
            chunk = {"fans": records[start : start + FANS_PER_MESSAGE]}
            if start == 0:
                chunk["samples"] = result["samples"]
            runner.send_message(FANS_MESSAGE, chunk)
        health = result["health"]
        health["cpu_warning"] = bool(runner.cpu_warning_emitted)
        runner.send_message(DONE_MESSAGE, health)
