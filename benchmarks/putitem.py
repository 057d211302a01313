"""Raw PutItem/s of the emulator: parallel raw-HTTP writers on a scratch table.

Each client shape runs some writer processes, each with some threads, and
each thread has its own keep-alive connection. Writes are counted only in a
measured interval after a warm-up, and the CPU time of the clients and of the
emulator is sampled over that interval, so the figures show which side ran
out of CPU.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from benchmarks.awsjson import AwsJsonClient, AwsJsonError
from benchmarks.machine import cores_used, cpu_snapshot

logger = logging.getLogger(__name__)

WARMUP_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 30
# Writers stop on their own at the end of the interval; this is the slack
# for the last call in flight and the result message.
FINISH_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class ClientShape:
    """How many writer processes, and connections (threads) in each."""

    processes: int
    connections: int

    def label(self) -> str:
        return f"{self.processes}x{self.connections}"


DEFAULT_SHAPES = (ClientShape(1, 4), ClientShape(2, 4), ClientShape(3, 6))


def create_scratch_table(endpoint_url: str) -> str:
    """Create a table like the queue table, without a stream; return its name."""
    name = f"bench-scratch-{uuid.uuid4().hex[:8]}"
    client = AwsJsonClient(endpoint_url, "dynamodb")
    client.call(
        "CreateTable",
        {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "fan_id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "fan_id", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    client.close()
    return name


def measure_putitem(
    endpoint_url: str,
    emulator_pid: int,
    *,
    seconds: float,
    shapes: tuple[ClientShape, ...] = DEFAULT_SHAPES,
) -> dict[str, Any]:
    """Run each client shape for ``seconds``; return every run and the best."""
    table = create_scratch_table(endpoint_url)
    runs = []
    for shape in shapes:
        run = _run_shape(endpoint_url, table, shape, seconds, emulator_pid)
        logger.info(
            "PutItem with %s writers: %.0f/s, emulator %.2f cores, clients %.2f cores",
            shape.label(),
            run["puts_per_second"],
            run["emulator_cores"],
            run["client_cores"],
        )
        runs.append(run)
    best = max(runs, key=lambda run: float(run["puts_per_second"]))
    return {
        "client": "raw HTTP (AWS JSON protocol, http.client keep-alive), "
        "one connection per thread",
        "table": "scratch table without a stream, 4 attributes per item",
        "measured_seconds_per_shape": seconds,
        "runs": runs,
        "best_puts_per_second": best["puts_per_second"],
        "best_shape": best["shape"],
    }


def _run_shape(
    endpoint_url: str,
    table: str,
    shape: ClientShape,
    seconds: float,
    emulator_pid: int,
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    results = context.Queue()
    go = context.Event()
    window = context.Array("d", 2)
    processes = [
        context.Process(
            target=_writer_process,
            args=(endpoint_url, table, index, shape.connections),
            kwargs={"ready": ready, "results": results, "go": go, "window": window},
            daemon=True,
        )
        for index in range(shape.processes)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=READY_TIMEOUT_SECONDS)
        start = time.monotonic() + WARMUP_SECONDS
        window[0], window[1] = start, start + seconds
        go.set()
        cores = _sample_over(emulator_pid, start, start + seconds)
        reports = [
            results.get(timeout=seconds + WARMUP_SECONDS + FINISH_TIMEOUT_SECONDS)
            for _ in processes
        ]
    finally:
        for process in processes:
            process.join(timeout=FINISH_TIMEOUT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
    puts = sum(int(report["puts"]) for report in reports)
    errors = sum(int(report["errors"]) for report in reports)
    client_cpu = sum(float(report["cpu_seconds"]) for report in reports)
    first_error = next((r["first_error"] for r in reports if r["first_error"]), None)
    return {
        "shape": shape.label(),
        "processes": shape.processes,
        "connections_per_process": shape.connections,
        "puts": puts,
        "errors": errors,
        "first_error": first_error,
        "puts_per_second": round(puts / seconds, 1),
        "emulator_cores": cores["emulator"],
        "client_cores": round(client_cpu / seconds, 2),
        "machine_busy_cores": cores["machine"],
        "other_cores_estimate": round(cores["machine"] - cores["benchmark"], 2),
        "client_cpu_ms_per_put": round(client_cpu / puts * 1000, 3) if puts else None,
    }


def _sample_over(pid: int, start: float, end: float) -> dict[str, float]:
    _sleep_until(start)
    ours = {"benchmark": os.getpid()}
    before = cpu_snapshot({"emulator": pid}, ours)
    _sleep_until(end)
    return cores_used(before, cpu_snapshot({"emulator": pid}, ours), end - start)


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _writer_process(
    endpoint_url: str,
    table: str,
    index: int,
    connections: int,
    *,
    ready: Any,
    results: Any,
    go: Any,
    window: Any,
) -> None:
    clients = [AwsJsonClient(endpoint_url, "dynamodb") for _ in range(connections)]
    ready.put(index)
    go.wait()
    start, end = window[0], window[1]
    counters = [_Counter() for _ in clients]
    threads = [
        threading.Thread(
            target=_write_until,
            args=(client, table, f"p{index}-t{number}", start, end, counter),
            daemon=True,
        )
        for number, (client, counter) in enumerate(zip(clients, counters, strict=True))
    ]
    for thread in threads:
        thread.start()
    _sleep_until(start)
    cpu_before = time.process_time()
    _sleep_until(end)
    cpu_seconds = time.process_time() - cpu_before
    for thread in threads:
        thread.join()
    results.put(
        {
            "puts": sum(counter.puts for counter in counters),
            "errors": sum(counter.errors for counter in counters),
            "first_error": next(
                (c.first_error for c in counters if c.first_error), None
            ),
            "cpu_seconds": cpu_seconds,
        }
    )


@dataclass
class _Counter:
    puts: int = 0
    errors: int = 0
    first_error: str | None = None


def _write_until(
    client: AwsJsonClient,
    table: str,
    prefix: str,
    start: float,
    end: float,
    counter: _Counter,
) -> None:
    sequence = 0
    while True:
        sequence += 1
        item = {
            "fan_id": {"S": f"{prefix}-{sequence}"},
            "sale_id": {"S": "scratch"},
            "client_time": {"N": str(int(time.time() * 1000))},
            "synthetic": {"BOOL": True},
        }
        try:
            client.call("PutItem", {"TableName": table, "Item": item})
            failed = False
        except AwsJsonError as exc:
            failed = True
            counter.first_error = counter.first_error or str(exc)
        finished = time.monotonic()
        if finished >= end:
            break
        if finished >= start:
            if failed:
                counter.errors += 1
            else:
                counter.puts += 1
    client.close()
