"""What the terminal shows: live progress while Locust runs, then the summary."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from loadtests import outputs
from loadtests.processes import LocustProcesses
from loadtests.report import format_value
from loadtests.thresholds import Verdict

REFRESH_SECONDS = 0.5
# Without a terminal (CI logs), one plain line this often instead.
PLAIN_LINE_SECONDS = 10.0


def watch(
    processes: LocustProcesses,
    folder: Path,
    stock: int,
    timeout: float,
    console: Console,
) -> dict[str, Any]:
    """Show progress until Locust exits or ``timeout`` passes; return the last."""
    deadline = time.monotonic() + timeout
    progress: dict[str, Any] = {}
    next_line = time.monotonic()
    with Live(
        _view(progress, stock), console=console, auto_refresh=False, transient=False
    ) as live:
        while processes.running() and time.monotonic() < deadline:
            progress = _read(folder) or progress
            live.update(_view(progress, stock), refresh=True)
            if not console.is_terminal and time.monotonic() >= next_line:
                console.print(_line(progress, stock))
                next_line += PLAIN_LINE_SECONDS
            time.sleep(REFRESH_SECONDS)
        progress = _read(folder) or progress
        live.update(_view(progress, stock), refresh=True)
    console.print()
    return progress


def print_summary(
    console: Console,
    headline: str,
    verdict: str,
    values: Mapping[str, Any],
    verdicts: Sequence[Verdict],
    folder: Path,
) -> None:
    """Print the run's key figures, every threshold that failed, and the verdict."""
    table = Table(title="Spike summary", show_header=False, title_justify="left")
    for label, name in (
        ("fans arrived / joined", ("fans_arrived", "fans_joined")),
        ("fans admitted (stack)", ("fans_admitted",)),
        ("tickets sold (DynamoDB) / stock", ("tickets_sold", "stock")),
        ("oversold tickets", ("oversold_tickets",)),
        ("lost fans", ("lost_fans",)),
        ("bot tickets", ("bot_tickets",)),
        ("join latency p95 (s)", ("join_latency_p95_seconds",)),
        ("time to queue number p95 (s)", ("time_to_number_p95_seconds",)),
        (
            "time in queue p50 / p95 (s)",
            ("time_in_queue_p50_seconds", "time_in_queue_p95_seconds"),
        ),
        ("purchase latency p95 (s)", ("purchase_latency_p95_seconds",)),
        ("position error p95 (people)", ("position_error_p95_people",)),
        (
            "fairness inversions / max early",
            ("fairness_inversions", "fairness_max_early_places"),
        ),
        ("windows reclaimed", ("windows_reclaimed",)),
        ("polls per waiting fan-minute", ("poll_requests_per_waiting_fan_minute",)),
        ("requests / failed", ("requests", "request_failures")),
    ):
        table.add_row(label, " / ".join(format_value(values.get(n)) for n in name))
    console.print(table)
    failed = [v for v in verdicts if v.failed]
    if failed:
        failures = Table(title="Thresholds not met", title_justify="left")
        failures.add_column("section")
        failures.add_column("measure")
        failures.add_column("measured", justify="right")
        failures.add_column("limit")
        for failure in failed:
            failures.add_row(
                failure.threshold.section,
                failure.threshold.measure,
                format_value(failure.value),
                f"{failure.threshold.operator} {failure.threshold.limit:g}",
            )
        console.print(failures)
    passed = sum(1 for v in verdicts if v.passed)
    no_data = sum(1 for v in verdicts if v.passed is None)
    console.print(
        f"Thresholds: {passed} passed, {len(failed)} failed, {no_data} without data."
    )
    style = {"passed": "bold green", "failed": "bold red"}.get(verdict, "bold yellow")
    console.print(f"[{style}]{headline}[/{style}]")
    console.print(f"Report: {folder / outputs.REPORT_FILE}")


def _read(folder: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = outputs.read_json(folder / outputs.PROGRESS_FILE)
    except (OSError, ValueError):
        return None
    return data


def _elapsed(progress: Mapping[str, Any]) -> float:
    start = float(progress.get("start_at", 0) or 0)
    return max(time.time() - start, 0.0) if start else 0.0


def _view(progress: Mapping[str, Any], stock: int) -> Group:
    counters = progress.get("counters", {})
    table = Table(show_header=True, header_style="bold", box=None)
    for column in (
        "arrived",
        "waiting",
        "admitted",
        "sold",
        "told sold out",
        "errors",
        "elapsed / expected",
    ):
        table.add_column(column, justify="right")
    elapsed = _elapsed(progress)
    expected = float(progress.get("expected_seconds", 0) or 0)
    table.add_row(
        f"{counters.get('arrived', 0):,}/{counters.get('planned', 0):,}",
        f"{counters.get('waiting', 0):,}",
        f"{counters.get('admitted', 0):,}",
        f"{counters.get('tickets', 0):,}/{stock:,}",
        f"{counters.get('sold_out', 0):,}",
        f"{progress.get('failures', 0):,}/{progress.get('requests', 0):,}",
        f"{elapsed:.0f}/{expected:.0f} s",
    )
    bar = ProgressBar(total=max(expected, 1.0), completed=min(elapsed, expected or 1.0))
    return Group(table, bar)


def _line(progress: Mapping[str, Any], stock: int) -> str:
    counters = progress.get("counters", {})
    return (
        f"{_elapsed(progress):5.0f} s: arrived {counters.get('arrived', 0)}/"
        f"{counters.get('planned', 0)}, waiting {counters.get('waiting', 0)}, "
        f"admitted {counters.get('admitted', 0)}, sold {counters.get('tickets', 0)}/"
        f"{stock}, told sold out {counters.get('sold_out', 0)}, errors "
        f"{progress.get('failures', 0)}/{progress.get('requests', 0)}"
    )
