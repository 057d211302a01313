"""Admissions/s of the window processor while a line of fixed length waits.

The line is pumped before the processor starts (see ``benchmarks.line``) and
topped up while it runs, so the number waiting stays within 15% of the target. The
sale's windows turn over by themselves: with a claim timeout of 1 s, the
processor reclaims each window 1 s after it admitted a fan who never opens
the purchase URL. So each admitted fan costs the processor one admission and
one reclaim, and no helper and no ticketing service take part. The
forwarder's stream mapping is disabled, since the pump does its work. Admissions
are counted afterwards from the fans' ``admitted_at`` times.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from benchmarks.awsjson import AwsJsonClient
from benchmarks.line import LinePump
from benchmarks.machine import cores_used, cpu_snapshot
from system import embedded, provision, schema
from system.clients import make_client
from system.embedded import EmbeddedState
from system.sale import SaleConfig
from system.stack import StackResources

logger = logging.getLogger(__name__)

DEFAULT_WINDOWS = 500
CLAIM_TIMEOUT_SECONDS = 1
SESSION_SECONDS = 1
STOCK = 10_000_000  # no purchases happen, so the sale never sells out
WARMUP_SECONDS = 5.0
TOP_UP_INTERVAL_SECONDS = 0.25
# The line is topped up once it is this fraction short of its target. Every
# send to MiniStack's FIFO queue costs time in proportion to the queue's
# length (it prunes its deduplication cache per message), so a top-up of the
# long line stalls the emulator for seconds. With this slack the long line
# needs none during warm-up and interval below 200 admissions/s.
TOP_UP_SLACK = 0.15
# GetQueueAttributes calls timed on the full line before the processor starts.
QUEUE_SCAN_PROBE_CALLS = 20
FIRST_ADMISSION_TIMEOUT_SECONDS = 60.0


def measure_admissions(
    state: EmbeddedState,
    resources: StackResources,
    *,
    waiting: int,
    windows: int,
    seconds: float,
) -> dict[str, Any]:
    """Measure admissions/s over ``seconds`` with about ``waiting`` fans in line.

    ``state`` must be a stack started without services: the processor is
    started here, once the line is in place.
    """
    sale = SaleConfig(
        sale_id=f"bench-line-{waiting}",
        stock=STOCK,
        window_count=windows,
        session_seconds=SESSION_SECONDS,
        claim_timeout_seconds=CLAIM_TIMEOUT_SECONDS,
    )
    provision.configure_sale(state.settings, resources, sale)
    disable_forwarder(state, resources)
    pump = LinePump(
        state.endpoint_url,
        queue_table=resources.queue_table,
        sales_table=resources.sales_table,
        queue_url=resources.work_queue_url,
    )
    keeper = _LineKeeper(state.endpoint_url, resources.sales_table, sale, pump, waiting)
    try:
        began = time.monotonic()
        pump.add(sale.sale_id, waiting)
        pump_seconds = time.monotonic() - began
        logger.info("Pumped %d waiting fans in %.1f s", waiting, pump_seconds)
        scan_seconds = _time_queue_scan(state.endpoint_url, resources.work_queue_url)
        embedded.start_services(state)
        began = time.monotonic()
        keeper.wait_for_first_admission(FIRST_ADMISSION_TIMEOUT_SECONDS)
        first_admission_seconds = time.monotonic() - began
        keeper.start()
        time.sleep(WARMUP_SECONDS)
        interval = _measure_interval(state, keeper, seconds)
    finally:
        keeper.stop()
        pump.close()
    admitted = _admission_times(state.endpoint_url, resources.queue_table, sale.sale_id)
    start, end = interval["start"], interval["end"]
    in_interval = [moment for moment in admitted if start <= moment < end]
    timeline = [0] * int(seconds + 0.999)
    for moment in in_interval:
        timeline[min(int(moment - start), len(timeline) - 1)] += 1
    samples = [s for s in keeper.samples if start <= s[0] < end]
    in_line = [sample[1] for sample in samples]
    in_use = [sample[2] for sample in samples]
    return {
        "waiting_target": waiting,
        "windows": windows,
        "claim_timeout_seconds": CLAIM_TIMEOUT_SECONDS,
        "pump_seconds": round(pump_seconds, 1),
        "processor_start_to_first_admission_seconds": round(first_admission_seconds, 1),
        "pump_ms_per_fan": round(pump_seconds / waiting * 1000, 3),
        "get_queue_attributes_ms_before_start": round(scan_seconds * 1000, 2),
        "warmup_seconds": WARMUP_SECONDS,
        "measured_seconds": seconds,
        "admissions": len(in_interval),
        "admissions_per_second": round(len(in_interval) / seconds, 1),
        "admissions_per_second_timeline": timeline,
        "waiting_min": min(in_line, default=None),
        "waiting_mean": round(sum(in_line) / len(in_line)) if in_line else None,
        "waiting_max": max(in_line, default=None),
        "windows_in_use_mean": round(sum(in_use) / len(in_use), 1) if in_use else None,
        "windows_in_use_max": max(in_use, default=None),
        "fans_added_during_interval": interval["added"],
        "emulator_cores": interval["cores"]["emulator"],
        "processor_cores": interval["cores"]["processor"],
        "emulator_cpu_ms_per_admission": _per_admission(
            interval["cores"]["emulator"], seconds, len(in_interval)
        ),
        "processor_cpu_ms_per_admission": _per_admission(
            interval["cores"]["processor"], seconds, len(in_interval)
        ),
        "machine_busy_cores": interval["cores"]["machine"],
        "other_cores_estimate": round(
            interval["cores"]["machine"] - interval["cores"]["benchmark"], 2
        ),
    }


def _time_queue_scan(endpoint_url: str, queue_url: str) -> float:
    """Return the mean time of a GetQueueAttributes call on the work queue.

    MiniStack 1.5.33 walks the queue's whole message list on every
    ReceiveMessage and GetQueueAttributes call. GetQueueAttributes changes
    nothing, unlike a receive, which counts towards the redrive limit.
    """
    client = AwsJsonClient(endpoint_url, "sqs")
    began = time.perf_counter()
    for _ in range(QUEUE_SCAN_PROBE_CALLS):
        client.call(
            "GetQueueAttributes",
            {"QueueUrl": queue_url, "AttributeNames": ["ApproximateNumberOfMessages"]},
        )
    elapsed = time.perf_counter() - began
    client.close()
    return elapsed / QUEUE_SCAN_PROBE_CALLS


def _per_admission(cores: float, seconds: float, admissions: int) -> float | None:
    if not admissions:
        return None
    return round(cores * seconds / admissions * 1000, 2)


def disable_forwarder(state: EmbeddedState, resources: StackResources) -> None:
    """Disable the forwarder's stream mapping, so it leaves pumped fans alone.

    A pumped fan's item is a new item, so its INSERT record would make the
    forwarder number the fan a second time and send a second work message.
    """
    lambda_client = make_client(state.settings, "lambda")
    mappings = lambda_client.list_event_source_mappings(
        FunctionName=resources.forwarder_function
    )["EventSourceMappings"]
    for mapping in mappings:
        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    logger.info("Disabled %d stream mappings of the forwarder", len(mappings))


def _measure_interval(
    state: EmbeddedState, keeper: _LineKeeper, seconds: float
) -> dict[str, Any]:
    processes = {
        "emulator": state.pids["ministack"],
        "processor": state.pids["processor"],
    }
    added_before = keeper.added
    ours = {"benchmark": os.getpid()}
    cpu_before = cpu_snapshot(processes, ours)
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    cores = cores_used(cpu_before, cpu_snapshot(processes, ours), end - start)
    return {
        "start": start,
        "end": end,
        "added": keeper.added - added_before,
        "cores": cores,
    }


class _LineKeeper(threading.Thread):
    """Thread that tops the line up to its target and samples the sale's counters."""

    def __init__(
        self,
        endpoint_url: str,
        sales_table: str,
        sale: SaleConfig,
        pump: LinePump,
        target: int,
    ):
        super().__init__(name="line-keeper", daemon=True)
        self._client = AwsJsonClient(endpoint_url, "dynamodb")
        self._sales_table = sales_table
        self._sale = sale
        self._pump = pump
        self._target = target
        self._stopping = threading.Event()
        self.added = 0
        # (epoch seconds, fans waiting, windows in use)
        self.samples: list[tuple[float, int, int]] = []
        self.error: BaseException | None = None

    def wait_for_first_admission(self, timeout: float) -> None:
        """Wait until the processor has admitted a fan, or raise after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read_counters()[0] > 0:
                return
            time.sleep(TOP_UP_INTERVAL_SECONDS)
        raise TimeoutError(
            f"The window processor admitted no fan of sale {self._sale.sale_id!r} "
            f"within {timeout:.0f} s. See processor.log in the stack's folder."
        )

    def run(self) -> None:
        try:
            while not self._stopping.wait(TOP_UP_INTERVAL_SECONDS):
                admitted, in_use = self._read_counters()
                waiting = self._pump.pumped - admitted
                self.samples.append((time.time(), waiting, in_use))
                if waiting < self._target * (1 - TOP_UP_SLACK):
                    self._pump.add(self._sale.sale_id, self._target - waiting)
                    self.added += self._target - waiting
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def stop(self) -> None:
        """Stop topping up, and raise the error the thread failed with, if any."""
        self._stopping.set()
        if self.is_alive():
            self.join()
        self._client.close()
        if self.error is not None:
            raise RuntimeError(f"Topping up the line failed: {self.error}") from (
                self.error
            )

    def _read_counters(self) -> tuple[int, int]:
        item = self._client.call(
            "GetItem",
            {
                "TableName": self._sales_table,
                "Key": {schema.SALE_ID: {"S": self._sale.sale_id}},
                "ConsistentRead": True,
            },
        ).get("Item", {})
        admitted = int(item.get(schema.ADMITTED_COUNT, {}).get("N", "0"))
        in_use = int(item.get(schema.WINDOWS_IN_USE, {}).get("N", "0"))
        return admitted, in_use


def _admission_times(endpoint_url: str, queue_table: str, sale_id: str) -> list[float]:
    client = AwsJsonClient(endpoint_url, "dynamodb")
    request: dict[str, Any] = {
        "TableName": queue_table,
        "FilterExpression": "#sale = :sale AND attribute_exists(#admitted)",
        "ProjectionExpression": "#admitted",
        "ExpressionAttributeNames": {
            "#sale": schema.SALE_ID,
            "#admitted": schema.ADMITTED_AT,
        },
        "ExpressionAttributeValues": {":sale": {"S": sale_id}},
    }
    times: list[float] = []
    while True:
        page = client.call("Scan", request)
        times.extend(float(item[schema.ADMITTED_AT]["N"]) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            client.close()
            return times
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
