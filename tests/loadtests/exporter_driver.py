"""Run the load-test exporter inside real Locust runners, in a process of its own.

Importing Locust patches the standard library with gevent, which breaks ssl
for every module the test session imported before (boto3 among them). So
the tests run each scenario here, in a child process, and read the scraped
``/metrics`` text that it prints as JSON.

Usage: python exporter_driver.py SCENARIO
"""

from __future__ import annotations

# isort: off
from locust import User, constant, task  # first: Locust patches with gevent

# isort: on
import json
import sys
import threading
import time
import urllib.request

import gevent
from locust.env import Environment

from loadtests import exporter
from system.embedded import free_port
from system.errors import ExporterError

SALE = "exporter-test"


class FixedFan(User):
    """A fan that reports made-up requests, no network."""

    wait_time = constant(0.05)

    def on_start(self) -> None:
        installed = exporter.find(self.environment)
        assert installed is not None
        installed.record_arrival()

    @task
    def poll(self) -> None:
        fire = self.environment.events.request.fire
        fire(
            request_type="GET",
            name="poll",
            response_time=30.0,
            response_length=0,
            exception=None,
            context={},
        )
        fire(
            request_type="PUT",
            name="join",
            response_time=3000.0,
            response_length=0,
            exception=RuntimeError("throttled"),
            context={},
        )


def scrape(port: int | None) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return str(r.read().decode())


def local() -> dict[str, str]:
    environment = Environment(user_classes=[FixedFan])
    runner = environment.create_local_runner()
    installed = exporter.install(environment, port=0)
    runner.start(3, spawn_rate=100)
    gevent.sleep(0.5)
    installed.record_admission(SALE, 1, 1000.0, 12.5)
    installed.set_threshold("p95_join_below_2s", False)
    installed.update()
    running = scrape(installed.port)
    installed.set_active_fans(250)  # a crowd of fans driven by 3 users
    crowd = scrape(installed.port)
    runner.quit()
    installed.stop()
    return {"running": running, "crowd": crowd}


def stop() -> dict[str, str]:
    environment = Environment(user_classes=[FixedFan])
    environment.create_local_runner()
    installed = exporter.install(environment, port=0)
    # Fan 2 was admitted 5 s before fan 1, and fan 3 after both: one inversion.
    for number, admitted_at in ((2, 100.0), (1, 105.0), (3, 106.0)):
        installed.record_admission(SALE, number, admitted_at, 1.0)
    installed.update()
    before = scrape(installed.port)
    environment.events.test_stop.fire(environment=environment)
    after = scrape(installed.port)
    installed.stop()
    return {"before": before, "after": after}


def distributed() -> dict[str, str]:
    master_port = free_port()
    master_env = Environment(user_classes=[FixedFan])
    master = master_env.create_master_runner("127.0.0.1", master_port)
    worker_env = Environment(user_classes=[FixedFan])
    worker = worker_env.create_worker_runner("127.0.0.1", master_port)
    on_master = exporter.install(master_env, port=0)
    on_worker = exporter.install(worker_env, port=0)
    for _ in range(50):
        if master.clients:
            break
        gevent.sleep(0.1)
    master.start(2, spawn_rate=100)
    on_worker.record_admission(SALE, 7, 50.0, 4.0)
    on_worker.set_active_fans(40)
    gevent.sleep(4.5)  # longer than one worker report interval (3 s)
    on_master.update()
    running = scrape(on_master.port)
    master.quit()
    worker.quit()
    on_master.stop()
    return {"running": running, "worker_port": str(on_worker.port)}


def errors() -> dict[str, str]:
    found = {}
    try:
        exporter.install(Environment(user_classes=[FixedFan]), port=0)
    except ExporterError as exc:
        found["no_runner"] = str(exc)
    first = Environment(user_classes=[FixedFan])
    first.create_local_runner()
    taken = exporter.install(first, port=0)
    second = Environment(user_classes=[FixedFan])
    second.create_local_runner()
    try:
        exporter.install(second, port=taken.port or 0)
    except ExporterError as exc:
        found["taken_port"] = str(exc)
        found["port"] = str(taken.port)
    taken.stop()
    return found


def final_scrape() -> dict[str, str]:
    environment = Environment(user_classes=[FixedFan])
    environment.create_local_runner()
    installed = exporter.install(environment, port=0, final_scrape_timeout_seconds=10.0)
    environment.events.test_stop.fire(environment=environment)
    # A thread plays Prometheus: it scrapes one second after the stop.
    scraper = threading.Timer(1.0, scrape, [installed.port])
    scraper.start()
    started = time.monotonic()
    scraped = installed.wait_for_final_scrape()
    waited = time.monotonic() - started
    installed.stop()

    lonely = Environment(user_classes=[FixedFan])
    lonely.create_local_runner()
    unread = exporter.install(lonely, port=0, final_scrape_timeout_seconds=0.5)
    lonely.events.test_stop.fire(environment=lonely)
    unread_scraped = unread.wait_for_final_scrape()
    unread.stop()
    return {
        "scraped": str(scraped),
        "waited": str(waited),
        "unread_scraped": str(unread_scraped),
    }


SCENARIOS = {
    "local": local,
    "stop": stop,
    "distributed": distributed,
    "errors": errors,
    "final_scrape": final_scrape,
}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]]()))
