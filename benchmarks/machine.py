"""Facts about the machine a benchmark ran on, and CPU time of processes."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

# utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks.
_UTIME_FIELD = 13
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def machine_facts() -> dict[str, Any]:
    """Return CPU count and model, memory, kernel, Python and MiniStack versions."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "ministack": _version("ministack"),
        "boto3": _version("boto3"),
        "load_average": load_average(),
    }


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def cpu_snapshot(
    processes: Mapping[str, int], trees: Mapping[str, int] | None = None
) -> dict[str, float]:
    """Return CPU seconds used so far by the machine and by named processes.

    ``processes`` count alone; ``trees`` count with their live descendants.
    """
    snapshot = {"machine": machine_busy_seconds()}
    for name, pid in processes.items():
        snapshot[name] = process_cpu_seconds(pid)
    for name, pid in (trees or {}).items():
        snapshot[name] = process_tree_cpu_seconds(pid)
    return snapshot


def cores_used(
    before: Mapping[str, float], after: Mapping[str, float], seconds: float
) -> dict[str, float]:
    """Return the cores each entry of two snapshots used on average in between."""
    return {name: round((after[name] - before[name]) / seconds, 2) for name in before}


def busy_cores(seconds: float) -> float:
    """Sample the machine's busy cores, averaged over ``seconds``."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def wait_for_quiet(
    max_wait_seconds: float, busy_limit_cores: float, sample_seconds: float = 2.0
) -> float:
    """Wait until the machine's busy cores drop to the limit, or give up.

    Returns the last sample. Other work on a shared machine distorts every
    figure, so each phase starts once the machine is quiet, when it can.
    """
    deadline = time.monotonic() + max_wait_seconds
    while True:
        busy = busy_cores(sample_seconds)
        if busy <= busy_limit_cores or time.monotonic() >= deadline:
            return round(busy, 2)


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores have spent busy since boot.

    Busy is everything but idle and iowait, from the first line of /proc/stat.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields[:8]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks) - idle - iowait) / _TICKS_PER_SECOND


def process_cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds a process has used so far."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name in field 2 may contain spaces: split after its ")".
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = fields[_UTIME_FIELD - 2], fields[_UTIME_FIELD - 1]
    return (int(utime) + int(stime)) / _TICKS_PER_SECOND


def process_tree_cpu_seconds(pid: int) -> float:
    """Return the CPU seconds of a process and its live descendants."""
    total = 0.0
    for child in [pid, *_descendants(pid)]:
        try:
            total += process_cpu_seconds(child)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
