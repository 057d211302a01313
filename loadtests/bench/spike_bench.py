"""Benchmark the spike simulation on this machine, against its targets.

Run it with ``python -m loadtests.bench.spike_bench`` (about 20 minutes on a
2-core machine). Each part starts a fresh embedded stack, because MiniStack
slows down for good after thousands of closed connections, and stops it
after. It prints a Markdown table for docs/benchmarks.md and writes every
figure to ``bench.json`` in the output folder.

1. cpu: load-generator CPU seconds per 1,000 fan requests, against Locust's
   FastHttpUser posting an equivalent pre-signed GetItem to the same endpoint
   at the same rate (target: at most 1.5 times).
2. memory: resident memory per waiting fan with 5,000 fans waiting (target:
   at most 20 KB).
3. polls: poll requests per waiting fan-minute of the adaptive poll against a
   fixed 3-second poll, at an equal "my turn" delay (target: at most 1/3),
   for a shorter and a longer wait.
4. largest: the largest spike the embedded stack takes with 0 lost fans
   (target: 20,000 fans arriving within 10 seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from loadtests import outputs
from system import embedded
from system.cli import main as boxoffice
from system.clients import make_client
from system.schema import FAN_ID
from system.stack import describe_stack

RAW_LOCUSTFILE = Path(__file__).with_name("raw_locustfile.py")
CPU_FANS = 1000
CPU_POLL_SECONDS = 4.0  # 1,000 fans polling item and sale every 4 s: 500 req/s
CPU_SECONDS = 40.0
RAW_USERS = 50
MEMORY_FANS = 5000
POLL_FANS = 1500
POLL_CAP_SECONDS = 150.0
FIXED_POLL_SECONDS = 3.0
LARGEST_SPIKES = (5000, 10000, 20000)
LARGEST_WITHIN_SECONDS = 10.0
# Long enough for the last fans, numbered minutes late, to learn the sale
# sold out at the longest poll interval.
LARGEST_CAP_SECONDS = 900.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        default="cpu,memory,polls,largest",
        help="comma-separated parts to run (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        default="reports/bench",
        help="folder for the runs' reports and bench.json (default: %(default)s)",
    )
    parser.add_argument(
        "--largest",
        default=",".join(str(n) for n in LARGEST_SPIKES),
        help="spike sizes (fans within 10 s) to try, smallest first",
    )
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"machine": machine()}
    parts: dict[str, Callable[[Path], dict[str, Any]]] = {
        "cpu": bench_cpu,
        "memory": bench_memory,
        "polls": bench_polls,
        "largest": lambda folder: bench_largest(
            folder, [int(n) for n in args.largest.split(",")]
        ),
    }
    for name in args.parts.split(","):
        print(f"== {name}", flush=True)
        started = time.monotonic()
        results[name] = parts[name](out / name)
        results[name]["wall_seconds"] = round(time.monotonic() - started, 1)
        (out / "bench.json").write_text(json.dumps(results, indent=2))
    print(markdown(results))
    return 0


def machine() -> dict[str, Any]:
    """Describe this machine and the versions that matter to the figures."""
    cpu_model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu_model,
        "cores": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "locust": metadata.version("locust"),
        "ministack": metadata.version("ministack"),
        "botocore": metadata.version("botocore"),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def bench_cpu(folder: Path) -> dict[str, Any]:
    """Compare CPU per 1,000 requests of the fans with FastHttpUser's raw posts."""
    with fresh_stack(folder / "home", processor=False) as state:
        fans = spike(
            folder / "fans",
            state,
            "--arrivals=presale",
            f"--fans={CPU_FANS}",
            "--presale-share=0",
            "--presale-seconds=0",
            "--presale-seconds=0",
            "--spike-seconds=5",
            "--mix=patient=1",
            f"--fixed-poll-seconds={CPU_POLL_SECONDS}",
            f"--duration-cap-seconds={CPU_SECONDS}",
        )
        worker = fans["generator"]["workers"][0]
        fan_cost = 1000 * worker["cpu_seconds"] / max(worker["requests"], 1)
        rate = 2 * CPU_FANS / CPU_POLL_SECONDS
        raw = raw_locust(folder, state, rate, CPU_SECONDS)
    raw_cost = 1000 * raw["cpu_seconds"] / max(raw["requests"], 1)
    return {
        "fan_requests": worker["requests"],
        "fan_cpu_seconds": round(worker["cpu_seconds"], 2),
        "fan_cpu_seconds_per_1000": round(fan_cost, 3),
        "raw_requests": raw["requests"],
        "raw_cpu_seconds": round(raw["cpu_seconds"], 2),
        "raw_cpu_seconds_per_1000": round(raw_cost, 3),
        "ratio": round(fan_cost / raw_cost, 2) if raw_cost else None,
        "target_ratio": 1.5,
    }


def bench_memory(folder: Path) -> dict[str, Any]:
    """Measure resident memory per waiting fan with 5,000 fans in line."""
    with fresh_stack(folder / "home", processor=False) as state:
        run = spike(
            folder / "run",
            state,
            "--arrivals=presale",
            f"--fans={MEMORY_FANS}",
            "--presale-share=0",
            "--presale-seconds=0",
            "--presale-seconds=0",
            "--spike-seconds=10",
            "--mix=patient=1",
            "--duration-cap-seconds=60",
        )
    worker = run["generator"]["workers"][0]
    grown = worker["rss_at_max_waiting_bytes"] - worker["rss_start_bytes"]
    waiting = max(worker["max_waiting"], 1)
    return {
        "fans_waiting": worker["max_waiting"],
        "rss_start_mib": round(worker["rss_start_bytes"] / 2**20, 1),
        "rss_waiting_mib": round(worker["rss_at_max_waiting_bytes"] / 2**20, 1),
        "bytes_per_waiting_fan": round(grown / waiting),
        "target_bytes": 20_000,
    }


def bench_polls(folder: Path) -> dict[str, Any]:
    """Compare poll load of a fixed 3-second poll and the adaptive poll.

    The saving depends on how long fans wait. Near the front of the line a
    fan polls at the shortest interval either way, so it saves only on the
    wait before that. The same 1,500 fans are measured twice: served by 20
    windows (a short wait) and by 5 (a longer one).
    """
    results: dict[str, Any] = {}
    for line, windows in (("short", 20), ("long", 5)):
        results[line] = _compare_polls(folder / line, windows)
    return results


def _compare_polls(folder: Path, windows: int) -> dict[str, Any]:
    common = (
        "--arrivals=presale",
        f"--fans={POLL_FANS}",
        "--presale-share=0",
        "--presale-seconds=0",
        "--spike-seconds=10",
        "--mix=patient=1",
        "--stock=100000",
        f"--windows={windows}",
        "--checkout-seconds=1",
        f"--duration-cap-seconds={POLL_CAP_SECONDS}",
    )
    results: dict[str, Any] = {"windows": windows}
    for name, options in (
        ("fixed", (f"--fixed-poll-seconds={FIXED_POLL_SECONDS}",)),
        # The adaptive poll's shortest interval equals the fixed one, so a
        # fan near the front learns of its turn as fast as with the fixed poll.
        ("adaptive", (f"--poll-min-seconds={FIXED_POLL_SECONDS}",)),
    ):
        with fresh_stack(folder / f"{name}-home") as state:
            run = spike(folder / name, state, *common, *options)
        values = run["summary"]["measures"]
        results[name] = {
            "poll_requests_per_waiting_fan_minute": values[
                "poll_requests_per_waiting_fan_minute"
            ],
            "my_turn_delay_p50_seconds": values["my_turn_delay_p50_seconds"],
            "my_turn_delay_p95_seconds": values["my_turn_delay_p95_seconds"],
            "fans_admitted": values["fans_admitted"],
            "time_in_queue_p50_seconds": values["time_in_queue_p50_seconds"],
        }
    fixed = results["fixed"]["poll_requests_per_waiting_fan_minute"]
    adaptive = results["adaptive"]["poll_requests_per_waiting_fan_minute"]
    results["ratio"] = round(adaptive / fixed, 3) if fixed and adaptive else None
    results["target_ratio"] = round(1 / 3, 3)
    return results


def bench_largest(folder: Path, sizes: Sequence[int]) -> dict[str, Any]:
    """Find the largest spike within 10 s that loses no fan."""
    tried = []
    for fans in sizes:
        with fresh_stack(folder / f"home-{fans}") as state:
            run = spike(
                folder / f"fans-{fans}",
                state,
                "--arrivals=presale",
                f"--fans={fans}",
                "--presale-share=0",
                "--presale-seconds=0",
                "--presale-seconds=0",
                f"--spike-seconds={LARGEST_WITHIN_SECONDS}",
                "--stock=1000",
                f"--duration-cap-seconds={LARGEST_CAP_SECONDS}",
            )
        values = run["summary"]["measures"]
        tried.append(
            {
                "fans": fans,
                "verdict": run["summary"]["verdict"],
                "lost_fans": values["lost_fans"],
                "never_numbered_fans": values["never_numbered_fans"],
                "join_failures": values["join_failures"],
                "join_latency_p95_seconds": values["join_latency_p95_seconds"],
                "time_to_number_p95_seconds": values["time_to_number_p95_seconds"],
                "arrival_lag_p99_seconds": values["arrival_lag_p99_seconds"],
                "requests": values["requests"],
                "request_failures": values["request_failures"],
            }
        )
    passing = [
        t["fans"]
        for t in tried
        if t["lost_fans"] == 0 and t["join_failures"] == 0 and t["verdict"] != "invalid"
    ]
    return {"runs": tried, "largest_without_loss": max(passing, default=0)}


@contextlib.contextmanager
def fresh_stack(home: Path, processor: bool = True) -> Iterator[embedded.EmbeddedState]:
    """Start an embedded stack in ``home``, without its window processor if
    ``processor`` is false, and stop it afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    state = embedded.up(home=home)
    try:
        if not processor:
            embedded.stop_service(state, "processor")
        yield state
    finally:
        embedded.stop(state)


def spike(folder: Path, state: embedded.EmbeddedState, *options: str) -> dict[str, Any]:
    """Run ``boxoffice spike`` on the stack; return its summary and generator."""
    code = boxoffice(
        ["spike", f"--home={state.home}", f"--report-dir={folder}", *options]
    )
    return {
        "exit_code": code,
        "summary": outputs.read_json(folder / outputs.SUMMARY_FILE),
        "generator": outputs.read_json(folder / outputs.GENERATOR_FILE),
    }


def raw_locust(
    folder: Path, state: embedded.EmbeddedState, rate: float, seconds: float
) -> dict[str, Any]:
    """Run the FastHttpUser baseline at ``rate`` requests per second."""
    request_file = folder / "raw-request.json"
    result_file = folder / "raw-result.json"
    request_file.write_text(json.dumps(signed_get_item(state)))
    environment = dict(os.environ)
    environment.update(
        {
            "BOXOFFICE_BENCH_REQUEST": str(request_file),
            "BOXOFFICE_BENCH_OUT": str(result_file),
            "BOXOFFICE_BENCH_RATE": str(rate / RAW_USERS),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(RAW_LOCUSTFILE),
            "--headless",
            "--users",
            str(RAW_USERS),
            "--spawn-rate",
            str(RAW_USERS),
            "--run-time",
            f"{int(seconds)}s",
            "--host",
            state.endpoint_url,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        env=environment,
        check=False,
        timeout=seconds + 60,
        stdout=(folder / "raw-locust.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    data: dict[str, Any] = json.loads(result_file.read_text())
    return data


def signed_get_item(state: embedded.EmbeddedState) -> dict[str, Any]:
    """Return a GetItem of a fan's item, serialized and SigV4-signed once."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    resources = describe_stack(state.settings)
    cognito = make_client(state.settings, "cognito-identity")
    identity = cognito.get_id(IdentityPoolId=resources.identity_pool_id)["IdentityId"]
    credentials = cognito.get_credentials_for_identity(IdentityId=identity)[
        "Credentials"
    ]
    body = json.dumps(
        {
            "TableName": resources.queue_table,
            "Key": {FAN_ID: {"S": identity}},
        }
    )
    host = state.endpoint_url.split("://", 1)[1]
    request = AWSRequest(
        method="POST",
        url=state.endpoint_url + "/",
        data=body,
        headers={
            "Host": host,
            "X-Amz-Target": "DynamoDB_20120810.GetItem",
            "Content-Type": "application/x-amz-json-1.0",
        },
    )
    SigV4Auth(
        ReadOnlyCredentials(
            credentials["AccessKeyId"],
            credentials["SecretKey"],
            credentials["SessionToken"],
        ),
        "dynamodb",
        state.settings.region,
    ).add_auth(request)
    return {"body": body, "headers": dict(request.headers.items())}


def markdown(results: dict[str, Any]) -> str:
    """Return the results as the Markdown rows of docs/benchmarks.md."""
    lines = ["| measure | result | target |", "| --- | --- | --- |"]
    cpu = results.get("cpu")
    if cpu:
        lines.append(
            f"| CPU s per 1,000 requests: fans / FastHttpUser raw | "
            f"{cpu['fan_cpu_seconds_per_1000']} / {cpu['raw_cpu_seconds_per_1000']}"
            f" = {cpu['ratio']}x | <= 1.5x |"
        )
    memory = results.get("memory")
    if memory:
        lines.append(
            f"| memory per waiting fan ({memory['fans_waiting']:,} waiting) | "
            f"{memory['bytes_per_waiting_fan']:,} bytes | <= 20,000 bytes |"
        )
    for line, polls in results.get("polls", {}).items():
        if not isinstance(polls, dict) or "fixed" not in polls:
            continue
        fixed, adaptive = polls["fixed"], polls["adaptive"]
        lines.append(
            f"| poll requests per waiting fan-minute, {line} line "
            f"(W={polls['windows']}): adaptive / fixed 3 s | "
            f"{adaptive['poll_requests_per_waiting_fan_minute']:.1f} / "
            f"{fixed['poll_requests_per_waiting_fan_minute']:.1f} = {polls['ratio']} "
            f"(my-turn delay p50 {adaptive['my_turn_delay_p50_seconds']:.1f} s / "
            f"{fixed['my_turn_delay_p50_seconds']:.1f} s) | <= 0.333 |"
        )
    largest = results.get("largest")
    if largest:
        lines.append(
            "| largest spike within 10 s with 0 lost fans | "
            f"{largest['largest_without_loss']:,} fans | 20,000 fans |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
