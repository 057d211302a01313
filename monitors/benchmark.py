"""Benchmark: time from a fault to the canary's alert, against its bound.

Starts its own embedded stack, a webhook receiver and the monitor. Each trial
stops the window processor at a random moment of the probe schedule and
measures the time until the firing alert reaches the receiver. Then it
restarts the processor and waits for the resolved alert. The bound is
interval × M + the probe's total deadline: the M-th failing probe starts at
most M intervals after the fault and fails within its deadline. The target
is a ratio of at most 1.1, the slack the schedule's jitter (up to a tenth of
the interval) may add.

Run: ``python -m monitors.benchmark --trials 5 --interval 10``
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from monitors.monitor import Monitor, MonitorConfig
from monitors.notify import WebhookNotifier
from monitors.receiver import WebhookReceiver
from synthetic.config import ProbeConfig
from synthetic.probe import Probe
from system import embedded

logger = logging.getLogger(__name__)

TARGET_RATIO = 1.1
ALERT_AFTER = 2
ALERT_WINDOW = 3
# Stage deadlines for a healthy embedded stack, where a probe takes about a
# second. Their total stays under the interval, so no run is skipped.
STAGE_DEADLINES_SECONDS = {
    "join": 3.0,
    "forward": 6.0,
    "admission": 4.0,
    "purchase": 4.0,
}
TOTAL_DEADLINE_SECONDS = 8.0
RECOVERY_TIMEOUT_INTERVALS = 8


@dataclass(frozen=True)
class Trial:
    """One fault: when it happened, when the alert arrived, and the ratio."""

    fault_at: float  # epoch seconds
    alert_at: float  # epoch seconds the firing alert reached the receiver
    seconds: float
    bound_seconds: float
    ratio: float


def run_benchmark(trials: int, interval: float, seed: int | None) -> list[Trial]:
    """Run the trials on a fresh embedded stack and return their timings."""
    rng = random.Random(seed)
    bound = interval * ALERT_AFTER + TOTAL_DEADLINE_SECONDS
    with tempfile.TemporaryDirectory(prefix="boxoffice-bench-") as home:
        state = embedded.up(home=home)
        receiver = WebhookReceiver().start()
        probe = Probe(
            state.settings,
            embedded.resources(state),
            ProbeConfig(
                stage_deadlines_seconds=STAGE_DEADLINES_SECONDS,
                total_deadline_seconds=TOTAL_DEADLINE_SECONDS,
                poll_interval_seconds=0.2,
            ),
        )
        monitor = Monitor(
            probe,
            MonitorConfig(
                interval_seconds=interval,
                alert_after=ALERT_AFTER,
                alert_window=ALERT_WINDOW,
                funnel_interval_seconds=None,
                metrics_port=None,
            ),
            notifiers=[WebhookNotifier(receiver.url)],
        )
        try:
            monitor.start()
            _wait_healthy(monitor, interval)
            results = []
            for number in range(1, trials + 1):
                trial = _one_trial(state, monitor, receiver, interval, bound, rng)
                print(
                    f"trial {number}: alert {trial.seconds:.1f} s after the fault, "
                    f"bound {bound:.1f} s, ratio {trial.ratio:.2f}",
                    flush=True,
                )
                results.append(trial)
            return results
        finally:
            monitor.stop()
            probe.close()
            receiver.stop()
            embedded.stop(state)


def _one_trial(
    state: embedded.EmbeddedState,
    monitor: Monitor,
    receiver: WebhookReceiver,
    interval: float,
    bound: float,
    rng: random.Random,
) -> Trial:
    # A fault at a random moment of the schedule, not just after a probe.
    time.sleep(rng.uniform(0, interval))
    seen = len(receiver.accepted())
    embedded.stop_service(state, "processor")
    fault_at = time.time()
    receiver.wait_for(lambda bodies: len(bodies) > seen, timeout=bound * 3)
    firing = [d for d in receiver.deliveries if d.status_code == 200][seen]
    embedded.start_services(state)
    receiver.wait_for(
        lambda bodies: len(bodies) > seen + 1,
        timeout=interval * RECOVERY_TIMEOUT_INTERVALS,
    )
    _wait_healthy(monitor, interval)
    seconds = firing.received_at - fault_at
    return Trial(fault_at, firing.received_at, seconds, bound, seconds / bound)


def _wait_healthy(monitor: Monitor, interval: float) -> None:
    deadline = time.monotonic() + interval * RECOVERY_TIMEOUT_INTERVALS
    while monitor.alert.firing or monitor.alert.failures:
        if time.monotonic() > deadline:
            raise TimeoutError("The canary did not become healthy again.")
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; exit 0 when every trial met the target ratio."""
    parser = argparse.ArgumentParser(
        prog="python -m monitors.benchmark",
        description="Measure the time from a stopped window processor to the "
        "canary's alert, divided by interval × M + deadline.",
    )
    parser.add_argument("--trials", type=int, default=5, help="faults to inject")
    parser.add_argument(
        "--interval",
        type=float,
        default=10.0,
        help="seconds between probes (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, help="seed of the fault timing")
    parser.add_argument("--json", type=Path, help="also write the trials to FILE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    trials = run_benchmark(args.trials, args.interval, args.seed)
    ratios = [trial.ratio for trial in trials]
    print(
        f"ratio min {min(ratios):.2f}, median {statistics.median(ratios):.2f}, "
        f"max {max(ratios):.2f} over {len(ratios)} trials (target <= {TARGET_RATIO})"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(trial) for trial in trials], indent=2))
    return 0 if max(ratios) <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
