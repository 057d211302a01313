"""One Locust process's share of the crowd, driven from a timer heap.

Three greenlets do the work. The feeder creates each fan when its arrival is
due, whatever the stack is doing, so arrivals follow the open model and the
feeder's lateness measures only the load generator. The dispatcher pops the
steps that are due and runs each in a bounded pool of greenlets. The monitor
samples the gauges and the event loop's lag once a second and hands a
progress snapshot to Locust.

Import this module only after gevent has patched the standard library.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import gevent.pool
import psutil

from loadtests import fans, series
from loadtests.arrivals import build_schedule, share
from loadtests.client import StackClient
from loadtests.fans import Fan
from loadtests.plan import BOT, SpikePlan
from loadtests.series import Series
from system import schema

if TYPE_CHECKING:
    # Importing the exporter imports Locust, which patches with gevent.
    from loadtests.exporter import LoadTestExporter

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
LAG_TICK_SECONDS = 0.1
# Steps still running at the deadline get this long to finish, so a purchase
# the stack made is seen by its fan before the run counts the orders.
DRAIN_SECONDS = 35.0
MAX_POSITION_SAMPLES = 20_000
USED_TOKENS_KEPT = 100
# Errors inside a step are logged in full this many times per process.
LOGGED_STEP_ERRORS = 5
ERROR = "error"  # outcome of a fan whose step raised

Progress = Callable[[dict[str, Any]], None]


class Crowd:
    """Run worker ``worker`` of ``workers``'s share of the plan's fans."""

    def __init__(
        self,
        plan: SpikePlan,
        worker: int,
        workers: int,
        fire: Callable[..., None],
        *,
        on_progress: Progress | None = None,
        exporter: LoadTestExporter | None = None,
    ) -> None:
        if plan.start_at <= 0:
            raise ValueError("The plan has no start time; set start_at first.")
        self.plan = plan
        self.worker = worker
        self.start_at = plan.start_at
        self.deadline = plan.start_at + plan.duration_cap_seconds
        self.arrivals = share(build_schedule(plan), worker, workers)
        self.rng = random.Random(f"{plan.seed}/{worker}")
        self.series = Series()
        self._fire = fire
        self._on_progress = on_progress
        self.exporter = exporter
        self.active_fans = 0  # arrived and not finished
        self.client = StackClient(
            plan.targets, plan.connections, self._report, self.rng
        )
        self.get_id_body = self.client.serialize(
            self.client.cognito,
            "GetId",
            {"IdentityPoolId": plan.targets.identity_pool_id},
        )
        self.sale_body = self.client.serialize(
            self.client.dynamodb,
            "GetItem",
            {
                "TableName": plan.targets.sales_table,
                "Key": {schema.SALE_ID: {"S": plan.sale_id}},
            },
        )
        self.ticketing_url = plan.targets.ticketing_url
        self.used_tokens: deque[tuple[str, str]] = deque(maxlen=USED_TOKENS_KEPT)
        self.fans: list[Fan] = []
        self.counters = dict.fromkeys(
            (
                "planned",
                "arrived",
                "joined",
                "waiting",
                "in_line",
                "admitted",
                "orders",
                "tickets",
                "sold_out",
                "finished",
                "bots",
                "bot_tickets",
                "requests",
                "failures",
            ),
            0,
        )
        self.counters["planned"] = len(self.arrivals)
        self.arrival_lags: list[float] = []
        self.loop_lags: list[float] = []
        self.samples: list[tuple[float, int, int]] = []
        self._samples_seen = 0
        self._heap: list[tuple[float, int, Fan, int]] = []
        self._sequence = itertools.count()
        self._wake = gevent.event.Event()
        self._pool = gevent.pool.Pool(plan.connections * 2)
        self._feeding = True
        self._step_errors = 0
        self._process = psutil.Process()
        self._cpu_start = 0.0
        self._cpu_end = 0.0
        self._rss_start = 0
        self._rss_at_max_waiting = 0
        self._max_waiting = 0

    # -- called by the fans ------------------------------------------------

    def schedule(self, due: float, fan: Fan, step: int) -> None:
        """Run ``step`` of ``fan`` at epoch second ``due``."""
        heapq.heappush(self._heap, (due, next(self._sequence), fan, step))
        self._wake.set()

    def past_deadline(self, now: float) -> bool:
        return now >= self.deadline

    def count(self, name: str, at: float, amount: int = 1) -> None:
        self.series.count(name, self._second(at), amount)

    def arrived(self, fan: Fan) -> None:
        self.active_fans += 1
        if self.exporter is not None:
            self.exporter.record_arrival()
            self.exporter.set_active_fans(self.active_fans)

    def joined(self, fan: Fan) -> None:
        self.counters["joined"] += 1
        self.counters["waiting"] += 1
        self.counters["in_line"] += 1
        self.count(series.JOINS, fan.joined_at or time.time())

    def admitted(self, fan: Fan, admitted_at: float | None = None) -> None:
        """Count ``fan`` as admitted at ``admitted_at``, the processor's time."""
        self.counters["admitted"] += 1
        self.counters["waiting"] -= 1
        seen_at = fan.admitted_seen_at or time.time()
        self.count(series.ADMISSIONS, seen_at)
        if self.exporter is None or fan.queue_number is None:
            return
        waited = seen_at - (fan.joined_at or seen_at)
        self.exporter.record_admission(
            self.plan.sale_id, fan.queue_number, admitted_at or seen_at, waited
        )

    def finished(self, fan: Fan, was_waiting: bool) -> None:
        self.counters["finished"] += 1
        if fan.arrived_at:
            self.active_fans -= 1
            if self.exporter is not None:
                self.exporter.set_active_fans(self.active_fans)
        if was_waiting:
            self.counters["waiting"] -= 1
        if fan.joined_at is not None:
            self.counters["in_line"] -= 1
        at = fan.finished_at or time.time()
        if fan.outcome == fans.PURCHASED:
            self.counters["orders"] += 1
            self.counters["tickets"] += fan.bought
            self.count(series.ORDERS, at)
            self.count(series.TICKETS, at, fan.bought)
        elif fan.outcome == fans.SOLD_OUT:
            self.counters["sold_out"] += 1
            self.count(series.SOLD_OUT, at)
        elif fan.outcome == fans.BOT_TICKET:
            self.counters["bot_tickets"] += 1

    def sample_position(self, at: float, number: int, ahead: int) -> None:
        """Keep a uniform sample of (time, queue number, people ahead shown)."""
        self._samples_seen += 1
        if len(self.samples) < MAX_POSITION_SAMPLES:
            self.samples.append((at, number, ahead))
            return
        slot = self.rng.randrange(self._samples_seen)
        if slot < MAX_POSITION_SAMPLES:
            self.samples[slot] = (at, number, ahead)

    # -- running -----------------------------------------------------------

    def run(self) -> None:
        """Run the share until every fan is done or the duration cap is reached."""
        logger.info(
            "Worker %d runs %d of the plan's fans from %.3f",
            self.worker,
            len(self.arrivals),
            self.start_at,
        )
        self._rss_start = self._process.memory_info().rss
        self._cpu_start = time.process_time()
        feeder = gevent.spawn(self._feed)
        monitor = gevent.spawn(self._monitor)
        try:
            self._dispatch()
        finally:
            feeder.kill()
            self._pool.join(timeout=DRAIN_SECONDS)
            self._pool.kill()
            for fan in self.fans:
                if fan.outcome is None:
                    fans.finish(self, fan, _unfinished_outcome(fan))
            monitor.kill()
            self._cpu_end = time.process_time()
            self._progress()
            self.client.close()
        logger.info("Worker %d finished its %d fans", self.worker, len(self.fans))

    def result(self) -> dict[str, Any]:
        """Return the fans' records, the position samples and the health."""
        return {
            "worker": self.worker,
            "fans": [fan.record() for fan in self.fans],
            "samples": self.samples,
            "health": self.health(),
        }

    def health(self) -> dict[str, Any]:
        """Return the load generator's own health figures for this process."""
        return {
            "worker": self.worker,
            "planned": len(self.arrivals),
            "arrived": len(self.fans),
            "arrival_lag_seconds": _summary(self.arrival_lags),
            "loop_lag_seconds": _summary(self.loop_lags),
            "requests": self.counters["requests"],
            "failures": self.counters["failures"],
            "cpu_seconds": self._cpu_end - self._cpu_start,
            "rss_start_bytes": self._rss_start,
            "rss_at_max_waiting_bytes": self._rss_at_max_waiting,
            "max_waiting": self._max_waiting,
        }

    def _feed(self) -> None:
        for arrival in self.arrivals:
            due = self.start_at + arrival.offset_seconds
            if due >= self.deadline:
                break
            delay = due - time.time()
            if delay > 0:
                gevent.sleep(delay)
            self.arrival_lags.append(max(time.time() - due, 0.0))
            fan = Fan(arrival, due)
            fan.clock_offset = self.rng.uniform(
                -fans.CLOCK_SKEW_SECONDS, fans.CLOCK_SKEW_SECONDS
            )
            self.fans.append(fan)
            self.counters["arrived"] += 1
            if arrival.behaviour == BOT:
                self.counters["bots"] += 1
            self.schedule(due, fan, fans.ARRIVE)
        self._feeding = False
        self._wake.set()

    def _dispatch(self) -> None:
        while True:
            now = time.time()
            if now >= self.deadline:
                logger.info("Worker %d reached the duration cap", self.worker)
                return
            if self._heap and self._heap[0][0] <= now:
                due, _, fan, step = heapq.heappop(self._heap)
                # Blocks while the pool is full: the step then starts late,
                # and its latency, counted from ``due``, shows the wait.
                self._pool.spawn(self._run_step, fan, step, due)
                continue
            if not self._heap and not self._feeding and len(self._pool) == 0:
                return
            timeout = self._heap[0][0] - now if self._heap else 0.05
            self._wake.clear()
            self._wake.wait(min(timeout, 0.05))

    def _run_step(self, fan: Fan, step: int, due: float) -> None:
        try:
            STEPS[step](self, fan, due)
        except Exception as exc:
            self._step_errors += 1
            if self._step_errors <= LOGGED_STEP_ERRORS:
                logger.exception(
                    "Fan %d failed in step %d", fan.arrival.arrival_id, step
                )
            fans.finish(self, fan, ERROR, type(exc).__name__)

    def _monitor(self) -> None:
        next_report = time.time() + PROGRESS_INTERVAL_SECONDS
        while True:
            before = time.perf_counter()
            gevent.sleep(LAG_TICK_SECONDS)
            self.loop_lags.append(
                max(time.perf_counter() - before - LAG_TICK_SECONDS, 0.0)
            )
            now = time.time()
            if now >= next_report:
                next_report += PROGRESS_INTERVAL_SECONDS
                second = self._second(now)
                self._note_memory()
                self.series.gauge(series.WAITING, second, self.counters["waiting"])
                self.series.gauge(series.IN_LINE, second, self.counters["in_line"])
                self._progress()

    def _note_memory(self) -> None:
        waiting = self.counters["waiting"]
        if waiting > self._max_waiting:
            self._max_waiting = waiting
            self._rss_at_max_waiting = self._process.memory_info().rss

    def _progress(self) -> None:
        if self._on_progress is None:
            return
        self._on_progress(
            {
                "worker": self.worker,
                "counters": dict(self.counters),
                "series": self.series.drain(),
                "arrival_lag_max_seconds": max(self.arrival_lags, default=0.0),
            }
        )

    def _report(self, **event: Any) -> None:
        self.counters["requests"] += 1
        if event.get("exception") is not None:
            self.counters["failures"] += 1
        self.series.observe(
            event["name"], self._second(time.time()), event["response_time"]
        )
        self._fire(**event)

    def _second(self, at: float) -> int:
        return max(int(at - self.start_at), 0)


STEPS: dict[int, Callable[[Crowd, Fan, float], None]] = {
    fans.ARRIVE: fans.arrive,
    fans.COUNTDOWN: fans.countdown,
    fans.QUEUE_PAGE: fans.queue_page,
    fans.POLL: fans.poll,
    fans.REFRESH: fans.refresh,
    fans.PURCHASE: fans.purchase,
    fans.BOT_TRY: fans.bot_try,
}


def _unfinished_outcome(fan: Fan) -> str:
    if fan.arrival.behaviour == BOT:
        return fans.BOT_DENIED if fan.bot_tries else fans.BOT_IDLE
    return fans.UNRESOLVED if fan.joined_at is not None else fans.JOIN_FAILED


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)
    return {
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }
