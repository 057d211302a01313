"""Benchmark the queue system on the embedded stack, all phases in one run.

1. Raw PutItem/s of MiniStack from parallel raw-HTTP clients, and GetId/s.
2. Join → queue number: fans join at half that rate; throughput and latency.
3. Admissions/s of the window processor with a short and a long line.

Each phase starts its own embedded stack in a temporary folder, because
MiniStack slows down for good after thousands of half-closed connections,
and stops it by PID when the phase ends or fails. Run it from the
repository root::

    .venv/bin/python -m benchmarks.system_bench --output results.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):
    # Run as a path: make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.admissions import DEFAULT_WINDOWS, measure_admissions
from benchmarks.capacity import measure_capacity
from benchmarks.join import measure_join
from benchmarks.machine import load_average, machine_facts, wait_for_quiet
from system import embedded, provision
from system.embedded import EmbeddedState
from system.sale import SaleConfig

logger = logging.getLogger("benchmarks.system_bench")

DEFAULT_FANS = 6000
DEFAULT_DURATION_SECONDS = 10.0
DEFAULT_SHORT_LINE = 1000
DEFAULT_LONG_LINE = 20000
JOIN_RATE_FRACTION = 0.5  # of the raw PutItem/s
# Targets the figures are checked against.
JOIN_P99_TARGET_SECONDS = 1.0
LINE_RATIO_TARGET = 0.95
# The join phase runs again at this fraction of its rate, for comparison.
DEFAULT_COMPARISON_FRACTION = 0.125
# A phase starts once other processes leave the machine at most this busy.
QUIET_BUSY_CORES = 0.5
DEFAULT_QUIET_WAIT_SECONDS = 30.0


def build_parser() -> argparse.ArgumentParser:
    """Return the benchmark's command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.system_bench",
        description="Measure the embedded stack's raw PutItem/s, join → queue "
        "number throughput and latency, and admissions/s with a short and a "
        "long line, in one run.",
    )
    parser.add_argument(
        "--fans",
        type=_positive_int,
        default=DEFAULT_FANS,
        help="fans that join in the join → number phase (default: %(default)s)",
    )
    parser.add_argument(
        "--duration-seconds",
        type=_positive_float,
        default=DEFAULT_DURATION_SECONDS,
        help="measured interval of each PutItem or GetId client run and of each "
        "admissions measurement, in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--join-rate",
        type=_positive_float,
        help="fans per second in the join phase (default: half the PutItem/s "
        "measured in phase 1; required with --skip-putitem)",
    )
    parser.add_argument(
        "--comparison-fraction",
        type=_positive_float,
        default=DEFAULT_COMPARISON_FRACTION,
        help="run the join phase a second time at this fraction of its rate, "
        "with this fraction of its fans, over the same time "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--windows",
        type=_positive_int,
        default=DEFAULT_WINDOWS,
        help="ticket-issuing windows of the sale in the admissions phase "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--short-line",
        type=_positive_int,
        default=DEFAULT_SHORT_LINE,
        help="fans waiting in the first admissions measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--long-line",
        type=_positive_int,
        default=DEFAULT_LONG_LINE,
        help="fans waiting in the second admissions measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="write every figure to this JSON file (default: print them)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="folder for the stacks' state and logs (default: a temporary "
        "folder, removed unless the run fails)",
    )
    parser.add_argument(
        "--quiet-wait-seconds",
        type=float,
        default=DEFAULT_QUIET_WAIT_SECONDS,
        help="before each phase, wait up to this many seconds for the machine "
        f"to be at most {QUIET_BUSY_CORES} cores busy; 0 starts at once "
        "(default: %(default)s)",
    )
    for phase in ("putitem", "join", "join-comparison", "admissions"):
        parser.add_argument(
            f"--skip-{phase}", action="store_true", help=f"skip the {phase} phase"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a summary and return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    if args.skip_putitem and not args.skip_join and args.join_rate is None:
        build_parser().error("--skip-putitem needs --join-rate for the join phase.")
    signal.signal(signal.SIGTERM, _exit_on_signal)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="boxoffice-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        results = run(args, work_dir)
    except BaseException:
        logger.error("The benchmark failed; the stacks' logs are in %s", work_dir)
        raise
    if args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
        logger.info("Wrote %s", args.output)
    else:
        print(json.dumps(results, indent=2))
    print("\n".join(summary_lines(results)))
    return 0


def summary_lines(results: dict[str, Any]) -> list[str]:
    """Return the headline figures of a run as lines of text."""
    lines = [f"Command: {results['command']}"]
    if "putitem" in results:
        putitem = results["putitem"]
        lines.append(
            f"Raw PutItem/s: {putitem['best_puts_per_second']:.0f} "
            f"(clients {putitem['best_shape']}); GetId/s: "
            f"{putitem['get_id']['calls_per_second']:.0f}"
        )
    for key in ("join", "join_comparison"):
        if key in results:
            join = results[key]
            latency = join["join_to_number"]
            lines.append(
                f"Join → number at {join['offered_fans_per_second']:.0f} fans/s "
                f"offered: {join['fans_per_second_through']} fans/s through, "
                f"p50 {latency['p50_seconds']} s, p99 {latency['p99_seconds']} s, "
                f"{join['not_numbered']} not numbered; p99 ≤ "
                f"{join['target_p99_seconds']} s met: {join['target_met']}"
            )
    if "admissions" in results:
        admissions = results["admissions"]
        for key in ("short", "long"):
            run = admissions[key]
            lines.append(
                f"Admissions/s with {run['waiting_target']} waiting: "
                f"{run['admissions_per_second']}"
            )
        lines.append(
            f"Long/short ratio: {admissions['long_to_short_ratio']} (target ≥ "
            f"{admissions['target_ratio']}, met: {admissions['target_met']})"
        )
    return lines


def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    """Run the phases the arguments select and return every figure."""
    started = time.time()
    results: dict[str, Any] = {
        "command": _command(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine_facts(),
    }
    join_rate = args.join_rate
    if not args.skip_putitem:
        quiet = _wait_for_quiet(args)
        with embedded_stack(work_dir, "putitem", services=False) as state:
            results["putitem"] = measure_capacity(
                state.endpoint_url,
                state.pids["ministack"],
                identity_pool_id=embedded.resources(state).identity_pool_id,
                seconds=args.duration_seconds,
            )
        results["putitem"]["machine_busy_cores_at_start"] = quiet
        if join_rate is None:
            join_rate = results["putitem"]["best_puts_per_second"] * JOIN_RATE_FRACTION
    if not args.skip_join:
        results["join"] = _join_phase(work_dir, args, args.fans, float(join_rate))
    if not args.skip_join_comparison and not args.skip_join:
        rate = float(join_rate) * args.comparison_fraction
        fans = max(1, round(args.fans * args.comparison_fraction))
        results["join_comparison"] = _join_phase(work_dir, args, fans, rate)
    if not args.skip_admissions:
        results["admissions"] = _admissions_phase(work_dir, args)
    results["load_average_at_end"] = load_average()
    results["elapsed_seconds"] = round(time.time() - started, 1)
    return results


def _join_phase(
    work_dir: Path, args: argparse.Namespace, fans: int, rate: float
) -> dict[str, Any]:
    quiet = _wait_for_quiet(args)
    # Only the join path runs: MiniStack with the forwarder Lambda. The window
    # processor and the ticketing service stay down, so they take no CPU.
    with embedded_stack(work_dir, f"join-{rate:.0f}", services=False) as state:
        resources = embedded.resources(state)
        sale = SaleConfig(sale_id="bench-join", stock=fans, window_count=1)
        provision.configure_sale(state.settings, resources, sale)
        result = measure_join(
            state.endpoint_url,
            state.pids["ministack"],
            identity_pool_id=resources.identity_pool_id,
            queue_table=resources.queue_table,
            sale_id=sale.sale_id,
            fans=fans,
            rate=rate,
        )
    result["machine_busy_cores_at_start"] = quiet
    p99 = result["join_to_number"]["p99_seconds"]
    result["target_p99_seconds"] = JOIN_P99_TARGET_SECONDS
    result["target_met"] = (
        p99 is not None
        and p99 <= JOIN_P99_TARGET_SECONDS
        and result["not_numbered"] == 0
    )
    logger.info(
        "Join → number at %.0f fans/s: %s fans/s through, p99 %s s",
        rate,
        result["fans_per_second_through"],
        p99,
    )
    return result


def _admissions_phase(work_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    # Each line length gets a fresh MiniStack, so both start from the same state.
    runs = {}
    for label, waiting in (("short", args.short_line), ("long", args.long_line)):
        quiet = _wait_for_quiet(args)
        with embedded_stack(work_dir, f"admissions-{label}", services=False) as state:
            runs[label] = measure_admissions(
                state,
                embedded.resources(state),
                waiting=waiting,
                windows=args.windows,
                seconds=args.duration_seconds,
            )
        runs[label]["machine_busy_cores_at_start"] = quiet
        logger.info(
            "Admissions with %d waiting: %.1f/s",
            waiting,
            runs[label]["admissions_per_second"],
        )
    short_rate = runs["short"]["admissions_per_second"]
    ratio = runs["long"]["admissions_per_second"] / short_rate if short_rate else None
    return {
        "method": "line pumped with BatchWriteItem + SendMessageBatch and topped "
        "up when 15% short; windows turn over by the processor's 1 s claim-timeout "
        "reclaim; admissions counted from the fans' admitted_at",
        "short": runs["short"],
        "long": runs["long"],
        "long_to_short_ratio": None if ratio is None else round(ratio, 3),
        "target_ratio": LINE_RATIO_TARGET,
        "target_met": ratio is not None and ratio >= LINE_RATIO_TARGET,
    }


@contextlib.contextmanager
def embedded_stack(
    work_dir: Path, name: str, *, services: bool
) -> Iterator[EmbeddedState]:
    """Start a fresh embedded stack in ``work_dir/name`` and stop it by PID after."""
    state = embedded.up(home=work_dir / name, services=services)
    try:
        yield state
    finally:
        stopped = embedded.stop(state)
        logger.info("Stopped %s", ", ".join(stopped) or "nothing")


def _wait_for_quiet(args: argparse.Namespace) -> float:
    busy = wait_for_quiet(args.quiet_wait_seconds, QUIET_BUSY_CORES)
    logger.info("Machine busy at %.2f cores before the phase", busy)
    return busy


def _command() -> str:
    if __spec__ is not None:
        return " ".join([".venv/bin/python", "-m", __spec__.name, *sys.argv[1:]])
    return " ".join([".venv/bin/python", *sys.argv])


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into SystemExit so the stacks are stopped on the way out.
    raise SystemExit(128 + signum)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number.")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number.")
    return value


if __name__ == "__main__":
    sys.exit(main())
