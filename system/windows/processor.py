"""The processor's loop: serve every sale's windows from the one work queue.

Each iteration rereads what may have changed (sales, windows), frees windows
that are due, receives at most one batch of messages, admits held fans to
free windows in queue-number order and publishes the sales' counters. The
work per iteration is bounded, and the loop sleeps when it found nothing to
do.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from monitors.metrics import WindowMetrics, WorkQueueMetrics
from system import schema
from system.stack import StackResources
from system.windows.admission import Admitter, Outcome, Tables
from system.windows.counters import AdmissionRate, CounterWriter
from system.windows.line import SaleLine
from system.windows.messages import RECEIVE_BATCH_SIZE, WorkMessage, WorkQueue
from system.windows.reclaim import FreeReason, FreeResult, Reclaimer, due_reason
from system.windows.sales import Sale, scan_sales
from system.windows.store import Window, create_missing_windows, load_windows

logger = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.2
RESCAN_INTERVAL_SECONDS = 2.0
VISIBILITY_TIMEOUT_SECONDS = 30
# Windows of a sale with busy windows or held messages are reread this often,
# so that windows freed by the ticketing service are soon used again. Other
# sales' windows are reread at the dormant interval.
ACTIVE_WINDOW_REFRESH_SECONDS = 0.5
DORMANT_WINDOW_REFRESH_SECONDS = 10.0
COUNTERS_MIN_INTERVAL_SECONDS = 0.5
COUNTERS_HEARTBEAT_SECONDS = 5.0
ERROR_BACKOFF_SECONDS = 1.0
ERROR_LOG_INTERVAL_SECONDS = 60.0
# Outcomes after which the work message is done with and deleted.
DELETE_MESSAGE_OUTCOMES = frozenset(
    {Outcome.ADMITTED, Outcome.DUPLICATE, Outcome.FAN_GONE, Outcome.NOT_NUMBERED}
)
UNKNOWN_SALE_RETRY_SECONDS = 10
# Held messages are the heads of their sales' lines. This caps their number in
# case the queue returns more than one batch per message group.
MAX_HELD_MESSAGES = 500


@dataclass(frozen=True)
class ProcessorOptions:
    """Timings of the processor's loop."""

    poll_interval_seconds: float = POLL_INTERVAL_SECONDS
    rescan_interval_seconds: float = RESCAN_INTERVAL_SECONDS
    visibility_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS


class Processor:
    """Admits fans to windows and frees windows, for every sale on the stack."""

    def __init__(
        self,
        *,
        dynamodb: Any,
        sqs: Any,
        resources: StackResources,
        secret: bytes,
        ticketing_url: str,
        metrics: WindowMetrics,
        queue_metrics: WorkQueueMetrics,
        options: ProcessorOptions,
        stop: threading.Event,
    ):
        self._dynamodb = dynamodb
        self._resources = resources
        self._metrics = metrics
        self._queue_metrics = queue_metrics
        self._options = options
        self._stop = stop
        self._queue = WorkQueue(
            sqs, resources.work_queue_url, options.visibility_timeout_seconds
        )
        self._admitter = Admitter(
            dynamodb,
            Tables(resources.queue_table, resources.windows_table),
            secret,
            ticketing_url,
        )
        self._reclaimer = Reclaimer(
            dynamodb, resources.queue_table, resources.windows_table
        )
        self._counters = CounterWriter(dynamodb, resources.sales_table)
        self._lines: dict[str, SaleLine] = {}
        self._invalid_sales: set[str] = set()
        self._scanned_at = -math.inf
        self._errors_logged_at: dict[str, float] = {}

    def run(self) -> None:
        """Loop until the stop event is set, then hand back the held messages."""
        logger.info(
            "Window processor started on queue %s (stack %s)",
            self._resources.work_queue_url,
            self._resources.stack_name,
        )
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:
                self._log_error(exc, "Window processor iteration")
                self._stop.wait(ERROR_BACKOFF_SECONDS)
                continue
            if not worked:
                self._stop.wait(self._options.poll_interval_seconds)
        self._release_held()
        logger.info("Window processor stopped")

    def run_once(self) -> bool:
        """Run one bounded iteration; return whether it found anything to do."""
        if time.monotonic() - self._scanned_at >= self._options.rescan_interval_seconds:
            self._rescan_sales()
        worked = False
        for line in list(self._lines.values()):
            worked |= self._guarded(line, self._serve_windows)
        worked |= self._receive()
        for line in list(self._lines.values()):
            worked |= self._guarded(line, self._admit_held)
        self._extend_held()
        for line in list(self._lines.values()):
            self._guarded(line, self._publish)
            self._export_gauges(line)
        return worked

    def _guarded(self, line: SaleLine, step: Callable[[SaleLine], bool]) -> bool:
        # One sale's failure must not stop the others from being served.
        try:
            return step(line)
        except Exception as exc:
            self._log_error(exc, f"Serving sale {line.sale_id}")
            return False

    def _log_error(self, exc: Exception, context: str) -> None:
        # Call only inside ``except``. Every error is counted, but a repeat of
        # the same error is logged with its traceback once per interval.
        self._metrics.loop_errors.inc()
        key = f"{context}: {type(exc).__name__}"
        now = time.monotonic()
        last = self._errors_logged_at.get(key, -math.inf)
        if now - last < ERROR_LOG_INTERVAL_SECONDS:
            logger.debug("%s failed again: %s", context, exc)
            return
        self._errors_logged_at[key] = now
        logger.exception("%s failed; continuing", context)

    # Sales and windows

    def _rescan_sales(self) -> None:
        sales, invalid = scan_sales(self._dynamodb, self._resources.sales_table)
        self._scanned_at = time.monotonic()
        for sale_id in invalid - self._invalid_sales:
            logger.warning(
                "Skipping sale %r: its item in %s is not a valid sale configuration",
                sale_id,
                self._resources.sales_table,
            )
        self._invalid_sales = invalid
        for sale_id, sale in sales.items():
            line = self._lines.get(sale_id)
            if line is None:
                self._add_line(sale)
            else:
                line.sale = sale
                if not sale.sold_out:
                    line.sold_out_announced = False  # the sale was reset
                if sale.config.window_count > line.windows_created_for:
                    self._create_windows(line)
        for sale_id in set(self._lines) - set(sales):
            self._remove_line(sale_id)

    def _add_line(self, sale: Sale) -> None:
        line = SaleLine(
            sale=sale,
            rate=AdmissionRate(),
            serving=sale.serving,
        )
        self._lines[sale.sale_id] = line
        self._create_windows(line)
        logger.info(
            "Serving sale %s with %d windows (%d in use)",
            sale.sale_id,
            sale.config.window_count,
            line.windows_in_use(),
        )

    def _create_windows(self, line: SaleLine) -> None:
        self._reload_windows(line)
        count = line.sale.config.window_count
        created = create_missing_windows(
            self._dynamodb,
            self._resources.windows_table,
            line.sale_id,
            count,
            set(line.windows),
        )
        if created:
            logger.info("Created %d windows for sale %s", len(created), line.sale_id)
            self._reload_windows(line)
        line.windows_created_for = count

    def _remove_line(self, sale_id: str) -> None:
        line = self._lines.pop(sale_id)
        logger.info("Stopped serving sale %s: it left the sales table", sale_id)
        self._queue.release(list(line.held.values()))

    def _reload_windows(self, line: SaleLine) -> None:
        windows = load_windows(
            self._dynamodb, self._resources.windows_table, line.sale_id
        )
        for window_id, old in line.windows.items():
            new = windows.get(window_id)
            if old.busy and (new is None or new.token_id != old.token_id):
                # Only the ticketing service frees windows besides this process.
                self._metrics.freed.labels(
                    line.sale_id, FreeReason.PURCHASE.value
                ).inc()
                line.dirty = True
        line.windows = windows
        line.windows_loaded_at = time.monotonic()

    def _serve_windows(self, line: SaleLine) -> bool:
        active = bool(line.held) or line.windows_in_use() > 0
        interval = (
            ACTIVE_WINDOW_REFRESH_SECONDS if active else DORMANT_WINDOW_REFRESH_SECONDS
        )
        if time.monotonic() - line.windows_loaded_at >= interval:
            self._reload_windows(line)
        now = time.time()
        if line.sale.sold_out:
            self._announce_sold_out(line, now)
            due = [(window, FreeReason.SOLD_OUT) for window in line.busy_windows()]
        else:
            due = []
            for window in line.busy_windows():
                reason = due_reason(window, now)
                if reason is not None:
                    due.append((window, reason))
        freed = [self._free(line, window, reason, now) for window, reason in due]
        return any(freed)

    def _announce_sold_out(self, line: SaleLine, now: float) -> None:
        if line.sold_out_announced:
            return
        if not line.sale.sold_out_flag:
            self._counters.mark_sold_out(line.sale_id, now)
        line.sold_out_announced = True
        logger.info(
            "Sale %s is sold out: freeing its windows and telling its waiting fans",
            line.sale_id,
        )

    def _free(
        self, line: SaleLine, window: Window, reason: FreeReason, now: float
    ) -> bool:
        result = self._reclaimer.free(line.sale_id, window, reason, now)
        if result is FreeResult.CHANGED:
            line.windows_loaded_at = -math.inf  # reread it next time
            return False
        line.windows[window.window_id] = replace(
            window,
            status=schema.WINDOW_FREE,
            fan_id=None,
            queue_number=None,
            token_id=None,
            admitted_at=None,
            claim_by=None,
            expires_at=None,
            claimed=False,
            synthetic=False,
        )
        line.dirty = True
        self._metrics.freed.labels(line.sale_id, reason.value).inc()
        if result is FreeResult.RECLAIMED and reason is not FreeReason.SOLD_OUT:
            line.reclaimed_delta += 1
        logger.debug(
            "Freed window %s of sale %s (%s, %s)",
            window.window_id,
            line.sale_id,
            reason.value,
            result.value,
        )
        return True

    # Messages

    # NOTE: every receive counts towards the work queue's maxReceiveCount (50
    # in template.yaml), and each processor start receives the held heads
    # again. A head held across fifty restarts, say of a sale not on sale yet,
    # moves to the dead-letter queue while its fan is still waiting.
    def _receive(self) -> bool:
        held = sum(len(line.held) for line in self._lines.values())
        wanting = [line for line in self._lines.values() if not line.held]
        if not wanting or held >= MAX_HELD_MESSAGES:
            return False
        messages, batch_size = self._queue.receive()
        self._queue_metrics.messages.labels("malformed").inc(batch_size - len(messages))
        if any(message.sale_id not in self._lines for message in messages):
            # The sale may have been created since the last scan.
            self._rescan_sales()
        for message in messages:
            line = self._lines.get(message.sale_id)
            if line is None:
                self._defer_unknown_sale(message)
            else:
                line.hold(message)
        if batch_size < RECEIVE_BATCH_SIZE:
            # A short batch means no other group had a visible message.
            for line in wanting:
                if not line.held:
                    line.head_numbered_at = 0.0
        return batch_size > 0

    def _defer_unknown_sale(self, message: WorkMessage) -> None:
        logger.warning(
            "Work message %s is for sale %r, which is not in %s; retrying in %d s",
            message.message_id,
            message.sale_id,
            self._resources.sales_table,
            UNKNOWN_SALE_RETRY_SECONDS,
        )
        self._queue_metrics.messages.labels("unknown_sale").inc()
        self._queue.delay(message, UNKNOWN_SALE_RETRY_SECONDS)

    def _extend_held(self) -> None:
        held = [m for line in self._lines.values() for m in line.held.values()]
        for message in self._queue.extend(held, time.monotonic()):
            # It is visible again and will be received anew.
            self._lines[message.sale_id].drop(message)

    def _release_held(self) -> None:
        held = [m for line in self._lines.values() for m in line.held.values()]
        try:
            self._queue.release(held)
        except Exception:
            logger.exception(
                "Could not return %d held messages; they return when their "
                "visibility timeout ends",
                len(held),
            )

    # Admission

    def _admit_held(self, line: SaleLine) -> bool:
        if not line.held:
            return False
        now = time.time()
        if line.sale.sold_out:
            return self._tell_sold_out(line, now)
        if not line.sale.on_sale(now):
            return False
        free = line.free_window_ids()
        handled: list[WorkMessage] = []
        for message in line.waiting_in_order():
            if not free:
                break
            outcome = self._admit_to_free_window(line, message, free, now)
            if outcome in DELETE_MESSAGE_OUTCOMES:
                handled.append(message)
            elif outcome is Outcome.CONFLICT:
                break
        self._finish(line, handled)
        return bool(handled)

    def _admit_to_free_window(
        self, line: SaleLine, message: WorkMessage, free: list[str], now: float
    ) -> Outcome:
        # ``free`` loses the windows this call fills or finds taken. A message
        # whose fan is not admitted leaves its window free for the next one.
        while free:
            outcome = self._admit(line, message, free[0], now)
            if outcome is Outcome.ADMITTED or outcome is Outcome.WINDOW_TAKEN:
                free.pop(0)
            if outcome is not Outcome.WINDOW_TAKEN:
                return outcome
        return Outcome.WINDOW_TAKEN

    def _admit(
        self, line: SaleLine, message: WorkMessage, window_id: str, now: float
    ) -> Outcome:
        outcome, window = self._admitter.admit(
            message, window_id, line.sale.config, now
        )
        self._queue_metrics.messages.labels(outcome.value).inc()
        if outcome is Outcome.ADMITTED and window is not None:
            line.windows[window_id] = window
            self._record_admission(line, message, now)
        elif outcome is Outcome.DUPLICATE:
            logger.debug(
                "Fan %s is not waiting with number %d; dropping message %s",
                message.fan_id,
                message.queue_number,
                message.message_id,
            )
        elif outcome is Outcome.FAN_GONE:
            logger.info(
                "Fan %s of work message %s no longer exists; dropping the message",
                message.fan_id,
                message.message_id,
            )
        elif outcome is Outcome.NOT_NUMBERED:
            # Holding the message would block every fan behind it in the
            # sale's FIFO group, so the fan who wiped its number forfeits it.
            logger.info(
                "Fan %s overwrote its item and lost queue number %d; dropping "
                "message %s",
                message.fan_id,
                message.queue_number,
                message.message_id,
            )
        elif outcome in (Outcome.WINDOW_TAKEN, Outcome.CONFLICT):
            line.windows_loaded_at = -math.inf
        return outcome

    def _record_admission(
        self, line: SaleLine, message: WorkMessage, now: float
    ) -> None:
        synthetic = "true" if message.synthetic else "false"
        self._metrics.admitted.labels(line.sale_id, synthetic).inc()
        if message.numbered_at > 0:
            self._metrics.time_in_queue.labels(line.sale_id, synthetic).observe(
                max(now - message.numbered_at, 0.0)
            )
        line.rate.record(time.monotonic())
        line.serving = max(line.serving, message.queue_number)
        if not message.synthetic:
            line.admitted_delta += 1  # admitted_count is a business count
        line.dirty = True
        logger.debug(
            "Admitted fan %s (number %d) to sale %s",
            message.fan_id,
            message.queue_number,
            line.sale_id,
        )

    def _tell_sold_out(self, line: SaleLine, now: float) -> bool:
        handled = []
        for message in line.waiting_in_order():
            outcome = self._admitter.tell_sold_out(message, now)
            self._queue_metrics.messages.labels(outcome.value).inc()
            if outcome is not Outcome.CONFLICT:
                handled.append(message)
        self._finish(line, handled)
        return bool(handled)

    def _finish(self, line: SaleLine, handled: list[WorkMessage]) -> None:
        for message in handled:
            line.drop(message)
        if handled:
            self._queue.delete(handled)

    # Counters

    def _publish(self, line: SaleLine) -> bool:
        since = time.monotonic() - line.published_at
        # A line with fans in it is republished every heartbeat, so that the
        # rate decays and updated_at stays fresh. An idle line is republished
        # only when something changes.
        heartbeat = since >= COUNTERS_HEARTBEAT_SECONDS and (
            bool(line.held) or line.windows_in_use() > 0 or line.published_rate > 0
        )
        if not heartbeat and not (
            line.changed() and since >= COUNTERS_MIN_INTERVAL_SECONDS
        ):
            return False
        if line.serving > line.sale.serving:
            self._counters.raise_serving(line.sale_id, line.serving)
            line.sale = replace(line.sale, serving=line.serving)
        counts = line.take_counts(line.rate.per_second(time.monotonic()))
        try:
            published = self._counters.publish(line.sale_id, counts, time.time())
        except Exception:
            line.restore_counts(counts)
            raise
        if not published:
            logger.info(
                "Sale %s has no item any more; counters not published", line.sale_id
            )
        line.published_at = time.monotonic()
        line.dirty = False
        return True

    def _export_gauges(self, line: SaleLine) -> None:
        sale = line.sale
        sale_id = line.sale_id
        serving = max(line.serving, sale.serving)
        waiting = 0 if sale.sold_out else max(sale.next_number - serving, 0)
        self._metrics.windows_in_use.labels(sale_id).set(line.windows_in_use())
        self._metrics.windows.labels(sale_id).set(sale.config.window_count)
        self._metrics.admission_rate.labels(sale_id).set(
            line.rate.per_second(time.monotonic())
        )
        self._metrics.fans_waiting.labels(sale_id).set(waiting)
        self._metrics.tickets_left.labels(sale_id).set(sale.tickets_left)
        head = line.head_numbered_at
        age = max(time.time() - head, 0.0) if head else 0.0
        self._queue_metrics.oldest_message_age.labels(sale_id).set(age)
