"""Join → queue number: paced fans join, a sweeper times their numbering.

Fans arrive on a fixed schedule (an open model: a fan joins at its time
whether or not earlier joins have finished), each with a Cognito GetId and a
conditional PutItem, the browser's two calls. A sweeper in the parent process
reads the fans still waiting for a number with consistent BatchGetItem calls
of up to 100 keys, oldest first, every ``SWEEP_INTERVAL_SECONDS``. The
forwarder numbers fans in stream order, so a sweep stops at the first batch
in which no fan was numbered yet. Polling then costs the emulator about one
call per 100 numbered fans plus one per sweep, whatever the backlog.

A fan's latency runs from its scheduled join time to the end of the sweep
call that first saw its queue number, so it includes any lag of the client
behind the schedule and up to one sweep interval of polling delay.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from benchmarks.awsjson import AwsJsonClient, AwsJsonError
from benchmarks.machine import cores_used, cpu_snapshot
from benchmarks.stats import latency_summary
from system import schema

logger = logging.getLogger(__name__)

JOIN_PROCESSES = 2
JOIN_THREADS_PER_PROCESS = 32
SWEEP_INTERVAL_SECONDS = 0.1
SWEEP_BATCH_KEYS = 100  # the maximum keys of one BatchGetItem
SWEEP_MAX_KEYS = 3000
START_DELAY_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 30
# After the last scheduled join, fans still unnumbered get this long.
DRAIN_TIMEOUT_SECONDS = 60.0
FINISH_TIMEOUT_SECONDS = 30.0


@dataclass
class _Joined:
    fan_id: str
    scheduled: float  # time.monotonic() seconds
    started: float
    acknowledged: float


def measure_join(
    endpoint_url: str,
    emulator_pid: int,
    *,
    identity_pool_id: str,
    queue_table: str,
    sale_id: str,
    fans: int,
    rate: float,
) -> dict[str, Any]:
    """Join ``fans`` fans at ``rate`` per second and return throughput and latency."""
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    records = context.Queue()
    go = context.Event()
    start_at = context.Value("d", 0.0)
    target = {
        "endpoint_url": endpoint_url,
        "identity_pool_id": identity_pool_id,
        "queue_table": queue_table,
        "sale_id": sale_id,
        "fans": fans,
        "rate": rate,
    }
    processes = [
        context.Process(
            target=_joiner_process,
            args=(target, index, JOIN_PROCESSES, JOIN_THREADS_PER_PROCESS),
            kwargs={"ready": ready, "records": records, "go": go, "start": start_at},
            daemon=True,
        )
        for index in range(JOIN_PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=READY_TIMEOUT_SECONDS)
        start = time.monotonic() + START_DELAY_SECONDS
        start_at.value = start
        go.set()
        arrivals_end = start + fans / rate
        emulator = {"emulator": emulator_pid}
        emulator_tree = {
            "emulator_and_lambda_workers": emulator_pid,
            "benchmark": os.getpid(),
        }
        cpu_before = cpu_snapshot(emulator, emulator_tree)
        sweeper = _Sweeper(endpoint_url, queue_table)
        sweeper.run(records, fans, deadline=arrivals_end + DRAIN_TIMEOUT_SECONDS)
        elapsed = time.monotonic() - start
        cores = cores_used(cpu_before, cpu_snapshot(emulator, emulator_tree), elapsed)
        # A process exits only once its queued records are read.
        sweeper.collect_reports(records, JOIN_PROCESSES, FINISH_TIMEOUT_SECONDS)
    finally:
        for process in processes:
            process.join(timeout=FINISH_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
    return _report(
        sweeper,
        fans=fans,
        rate=rate,
        start=start,
        elapsed=elapsed,
        cores=cores,
    )


def _report(
    sweeper: _Sweeper,
    *,
    fans: int,
    rate: float,
    start: float,
    elapsed: float,
    cores: dict[str, float],
) -> dict[str, Any]:
    joined = sweeper.joined
    visible = sweeper.visible
    latencies = [visible[fan] - joined[fan].scheduled for fan in visible]
    after_ack = [visible[fan] - joined[fan].acknowledged for fan in visible]
    lag = [record.started - record.scheduled for record in joined.values()]
    calls = [record.acknowledged - record.started for record in joined.values()]
    last_ack = max((r.acknowledged for r in joined.values()), default=start)
    last_visible = max(visible.values(), default=start)
    timeline: dict[int, int] = {}
    for moment in visible.values():
        second = int(moment - start)
        timeline[second] = timeline.get(second, 0) + 1
    return {
        "method": "Cognito GetId + conditional PutItem per fan over raw HTTP, "
        f"{JOIN_PROCESSES} processes x {JOIN_THREADS_PER_PROCESS} threads, "
        "open model; consistent BatchGetItem sweeps every "
        f"{SWEEP_INTERVAL_SECONDS} s, oldest first",
        "fans": fans,
        "offered_fans_per_second": round(rate, 1),
        "joined": len(joined),
        "join_errors": sweeper.join_errors,
        "first_join_error": sweeper.first_join_error,
        "joins_per_second": round(len(joined) / (last_ack - start), 1)
        if joined
        else None,
        "numbered": len(visible),
        "not_numbered": fans - len(visible),
        "fans_per_second_through": round(len(visible) / (last_visible - start), 1)
        if visible
        else None,
        "join_to_number": latency_summary(latencies),
        "put_acknowledged_to_number": latency_summary(after_ack),
        "client_lag": latency_summary(lag),
        "join_calls": latency_summary(calls),
        "sweep_calls": sweeper.calls,
        "elapsed_seconds": round(elapsed, 1),
        "emulator_cores": cores["emulator"],
        "emulator_and_lambda_workers_cores": cores["emulator_and_lambda_workers"],
        "machine_busy_cores": cores["machine"],
        "client_cores_while_joining": round(
            sweeper.client_cpu_seconds / (last_ack - start), 2
        )
        if joined
        else None,
        # The join processes exit before the last sample, so add their CPU.
        "other_cores_estimate": round(
            cores["machine"]
            - cores["benchmark"]
            - sweeper.client_cpu_seconds / elapsed,
            2,
        ),
        "numbered_per_second_timeline": [
            timeline.get(second, 0) for second in range(max(timeline, default=-1) + 1)
        ],
    }


class _Sweeper:
    """Collector of joined fans that polls their items until each has a number."""

    def __init__(self, endpoint_url: str, queue_table: str):
        self._client = AwsJsonClient(endpoint_url, "dynamodb")
        self._table = queue_table
        self._pending: OrderedDict[str, None] = OrderedDict()
        self.joined: dict[str, _Joined] = {}
        self.visible: dict[str, float] = {}
        self.join_errors = 0
        self.first_join_error: str | None = None
        self.calls = 0
        self.client_cpu_seconds = 0.0
        self._reports = 0

    def run(self, records: Any, fans: int, *, deadline: float) -> None:
        """Sweep until every fan that joined is numbered or ``deadline`` passes."""
        reported = 0
        while time.monotonic() < deadline:
            reported += self._collect(records)
            self._sweep()
            if reported >= fans and not self._pending:
                break
            time.sleep(SWEEP_INTERVAL_SECONDS)
        self._client.close()

    def collect_reports(self, records: Any, processes: int, timeout: float) -> None:
        """Read what is left on the queue, until every process sent its CPU time."""
        deadline = time.monotonic() + timeout
        while self._reports < processes and time.monotonic() < deadline:
            self._collect(records)
            time.sleep(SWEEP_INTERVAL_SECONDS)

    def _collect(self, records: Any) -> int:
        """Take the records waiting on the queue and return how many joins ended."""
        count = 0
        while True:
            try:
                kind, *fields = records.get_nowait()
            except queue.Empty:
                return count
            if kind == "cpu":
                self.client_cpu_seconds += float(fields[0])
                self._reports += 1
                continue
            count += 1
            if kind == "error":
                self.join_errors += 1
                self.first_join_error = self.first_join_error or str(fields[0])
                continue
            joined = _Joined(*fields)
            self.joined[joined.fan_id] = joined
            self._pending[joined.fan_id] = None

    def _sweep(self) -> None:
        keys = list(self._pending)[:SWEEP_MAX_KEYS]
        for offset in range(0, len(keys), SWEEP_BATCH_KEYS):
            chunk = keys[offset : offset + SWEEP_BATCH_KEYS]
            numbered = self._read(chunk)
            seen = time.monotonic()
            for fan_id in numbered:
                self.visible[fan_id] = seen
                self._pending.pop(fan_id, None)
            if not numbered:
                return

    def _read(self, fan_ids: list[str]) -> list[str]:
        self.calls += 1
        response = self._client.call(
            "BatchGetItem",
            {
                "RequestItems": {
                    self._table: {
                        "Keys": [{schema.FAN_ID: {"S": fan}} for fan in fan_ids],
                        "ConsistentRead": True,
                        "ProjectionExpression": f"{schema.FAN_ID}, "
                        f"{schema.QUEUE_NUMBER}",
                    }
                }
            },
        )
        items = response.get("Responses", {}).get(self._table, [])
        return [
            item[schema.FAN_ID]["S"] for item in items if schema.QUEUE_NUMBER in item
        ]


def _joiner_process(
    target: dict[str, Any],
    index: int,
    processes: int,
    threads: int,
    *,
    ready: Any,
    records: Any,
    go: Any,
    start: Any,
) -> None:
    numbers = iter(range(index, int(target["fans"]), processes))
    lock = threading.Lock()
    clients = [
        (
            AwsJsonClient(target["endpoint_url"], "cognito-identity"),
            AwsJsonClient(target["endpoint_url"], "dynamodb"),
        )
        for _ in range(threads)
    ]
    ready.put(index)
    go.wait()
    cpu_before = time.process_time()
    workers = [
        threading.Thread(
            target=_join_fans,
            args=(target, start.value, numbers, lock, cognito, dynamodb, records),
            daemon=True,
        )
        for cognito, dynamodb in clients
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    records.put(("cpu", time.process_time() - cpu_before))


def _join_fans(
    target: dict[str, Any],
    start: float,
    numbers: Any,
    lock: threading.Lock,
    cognito: AwsJsonClient,
    dynamodb: AwsJsonClient,
    records: Any,
) -> None:
    rate = float(target["rate"])
    while True:
        with lock:
            number = next(numbers, None)
        if number is None:
            break
        scheduled = start + number / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        started = time.monotonic()
        try:
            fan_id = _join(target, cognito, dynamodb)
        except AwsJsonError as exc:
            records.put(("error", str(exc)))
            continue
        records.put(("joined", fan_id, scheduled, started, time.monotonic()))
    cognito.close()
    dynamodb.close()


def _join(
    target: dict[str, Any], cognito: AwsJsonClient, dynamodb: AwsJsonClient
) -> str:
    identity = cognito.call("GetId", {"IdentityPoolId": target["identity_pool_id"]})
    fan_id = str(identity["IdentityId"])
    dynamodb.call(
        "PutItem",
        {
            "TableName": target["queue_table"],
            "Item": {
                schema.FAN_ID: {"S": fan_id},
                schema.SALE_ID: {"S": target["sale_id"]},
                schema.CLIENT_TIME: {"N": str(int(time.time() * 1000))},
                schema.SYNTHETIC: {"BOOL": False},
            },
            "ConditionExpression": f"attribute_not_exists({schema.FAN_ID})",
        },
    )
    return fan_id
