"""Raw capacity of the emulator: parallel raw-HTTP clients, one call type each.

PutItem/s is measured on a scratch table. Each client shape runs some client
processes, each with some threads, and each thread has its own keep-alive
connection. Calls are counted only in a measured interval after a warm-up,
and the CPU time of the clients and of the emulator is sampled over that
interval, so the figures show which side ran out of CPU. The best shape then
runs Cognito GetId, the other call of a fan's join, for comparison.
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
from system import schema

logger = logging.getLogger(__name__)

WARMUP_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 30
# Clients stop on their own at the end of the interval. This is the slack
# for the last call in flight and the result message.
FINISH_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class ClientShape:
    """How many client processes, and connections (threads) in each."""

    processes: int
    connections: int

    def label(self) -> str:
        return f"{self.processes}x{self.connections}"


DEFAULT_SHAPES = (ClientShape(1, 4), ClientShape(2, 4), ClientShape(3, 6))


def create_scratch_table(endpoint_url: str) -> str:
    """Create a table like the queue table but without a stream, and return its name."""
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


def measure_capacity(
    endpoint_url: str,
    emulator_pid: int,
    *,
    identity_pool_id: str,
    seconds: float,
    shapes: tuple[ClientShape, ...] = DEFAULT_SHAPES,
) -> dict[str, Any]:
    """Run PutItem with each client shape, then GetId with the best one."""
    put_item = {"operation": "PutItem", "table": create_scratch_table(endpoint_url)}
    runs = [
        _run_shape(endpoint_url, put_item, shape, seconds, emulator_pid)
        for shape in shapes
    ]
    best = max(runs, key=lambda run: float(run["calls_per_second"]))
    get_id = {"operation": "GetId", "identity_pool_id": identity_pool_id}
    best_shape = ClientShape(best["processes"], best["connections_per_process"])
    get_id_run = _run_shape(endpoint_url, get_id, best_shape, seconds, emulator_pid)
    return {
        "client": "raw HTTP (AWS JSON protocol, http.client keep-alive), "
        "one connection per thread",
        "table": "scratch table without a stream, 4 attributes per item",
        "measured_seconds_per_shape": seconds,
        "runs": runs,
        "best_puts_per_second": best["calls_per_second"],
        "best_shape": best["shape"],
        "get_id": get_id_run,
    }


def _run_shape(
    endpoint_url: str,
    target: dict[str, str],
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
            target=_client_process,
            args=(endpoint_url, target, index, shape.connections),
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
    calls = sum(int(report["calls"]) for report in reports)
    errors = sum(int(report["errors"]) for report in reports)
    client_cpu = sum(float(report["cpu_seconds"]) for report in reports)
    first_error = next((r["first_error"] for r in reports if r["first_error"]), None)
    logger.info(
        "%s with %s clients: %.0f/s, emulator %.2f cores, clients %.2f cores",
        target["operation"],
        shape.label(),
        calls / seconds,
        cores["emulator"],
        client_cpu / seconds,
    )
    return {
        "operation": target["operation"],
        "shape": shape.label(),
        "processes": shape.processes,
        "connections_per_process": shape.connections,
        "calls": calls,
        "errors": errors,
        "first_error": first_error,
        "calls_per_second": round(calls / seconds, 1),
        "emulator_cores": cores["emulator"],
        "client_cores": round(client_cpu / seconds, 2),
        "machine_busy_cores": cores["machine"],
        "other_cores_estimate": round(cores["machine"] - cores["benchmark"], 2),
        "emulator_cpu_ms_per_call": _per_call(cores["emulator"], seconds, calls),
        "client_cpu_ms_per_call": _per_call(client_cpu / seconds, seconds, calls),
    }


def _per_call(cores: float, seconds: float, calls: int) -> float | None:
    return round(cores * seconds / calls * 1000, 3) if calls else None


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


def _client_process(
    endpoint_url: str,
    target: dict[str, str],
    index: int,
    connections: int,
    *,
    ready: Any,
    results: Any,
    go: Any,
    window: Any,
) -> None:
    service = "dynamodb" if target["operation"] == "PutItem" else "cognito-identity"
    clients = [AwsJsonClient(endpoint_url, service) for _ in range(connections)]
    ready.put(index)
    go.wait()
    start, end = window[0], window[1]
    counters = [_Counter() for _ in clients]
    threads = [
        threading.Thread(
            target=_call_until,
            args=(client, target, f"p{index}-t{number}", start, end, counter),
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
            "calls": sum(counter.calls for counter in counters),
            "errors": sum(counter.errors for counter in counters),
            "first_error": next(
                (c.first_error for c in counters if c.first_error), None
            ),
            "cpu_seconds": cpu_seconds,
        }
    )


@dataclass
class _Counter:
    calls: int = 0
    errors: int = 0
    first_error: str | None = None


def _call_until(
    client: AwsJsonClient,
    target: dict[str, str],
    prefix: str,
    start: float,
    end: float,
    counter: _Counter,
) -> None:
    sequence = 0
    while True:
        sequence += 1
        try:
            client.call(target["operation"], _payload(target, f"{prefix}-{sequence}"))
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
                counter.calls += 1
    client.close()


def _payload(target: dict[str, str], key: str) -> dict[str, Any]:
    if target["operation"] == "GetId":
        return {"IdentityPoolId": target["identity_pool_id"]}
    item = {
        schema.FAN_ID: {"S": key},
        schema.SALE_ID: {"S": "scratch"},
        schema.CLIENT_TIME: {"N": str(int(time.time() * 1000))},
        schema.SYNTHETIC: {"BOOL": True},
    }
    return {"TableName": target["table"], "Item": item}
