"""Baseline for the CPU benchmark: Locust's FastHttpUser sending a raw request.

Each user posts the same DynamoDB GetItem, serialized and signed once before
the run, to the endpoint in the request file. The benchmark compares the CPU
this costs per 1,000 requests with what the spike's fans cost.

Environment: ``BOXOFFICE_BENCH_REQUEST`` names a JSON file with ``body`` and
``headers``. ``BOXOFFICE_BENCH_OUT`` names the JSON file this writes with the
CPU seconds and requests of the run. ``BOXOFFICE_BENCH_RATE`` is each user's
requests per second.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment

REQUEST = json.loads(Path(os.environ["BOXOFFICE_BENCH_REQUEST"]).read_text())
RATE_PER_USER = float(os.environ.get("BOXOFFICE_BENCH_RATE", "10"))
_cpu_at_start = 0.0


def _on_start(environment: Environment, **_: Any) -> None:
    global _cpu_at_start
    _cpu_at_start = time.process_time()


def _on_stop(environment: Environment, **_: Any) -> None:
    assert environment.runner is not None
    result = {
        "cpu_seconds": time.process_time() - _cpu_at_start,
        "requests": environment.runner.stats.total.num_requests,
        "failures": environment.runner.stats.total.num_failures,
    }
    Path(os.environ["BOXOFFICE_BENCH_OUT"]).write_text(json.dumps(result))


events.test_start.add_listener(_on_start)  # type: ignore[no-untyped-call]
events.test_stop.add_listener(_on_stop)  # type: ignore[no-untyped-call]


class RawGetItem(FastHttpUser):
    """Post one pre-signed GetItem at a steady rate."""

    wait_time = constant_throughput(RATE_PER_USER)

    @task
    def get_item(self) -> None:
        self.client.post(
            "/", data=REQUEST["body"], headers=REQUEST["headers"], name="raw_get_item"
        )
