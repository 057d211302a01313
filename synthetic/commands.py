"""The ``boxoffice canary`` subcommand: run one probe and report its verdict."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from synthetic.config import (
    CANARY_SALE_ID,
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_STAGE_DEADLINES_SECONDS,
    DEFAULT_TOTAL_DEADLINE_SECONDS,
    INJECTION_STAGES,
    ProbeConfig,
)
from synthetic.errors import InvalidProbeConfigError
from synthetic.result import ProbeResult
from system.aws_options import add_target_options

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1


def register(subparsers: Any) -> None:
    """Add ``canary`` to the ``boxoffice`` parser."""
    canary = subparsers.add_parser(
        "canary",
        help="push one synthetic fan through the funnel; exit 1 if it fails",
        description="Push one synthetic fan through the funnel (join, numbered by "
        "the forwarder, admitted by a window, dry-run purchase), time each "
        "stage and remove what it wrote. Exit 0 when healthy, 1 with the "
        "failed stage and the reason otherwise. Without --stack it probes the "
        "embedded stack.",
    )
    add_target_options(canary)
    add_probe_options(canary)
    canary.add_argument(
        "--json", action="store_true", help="print the result as one JSON object"
    )
    canary.set_defaults(handler=run_canary)


def add_probe_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that configure a probe."""
    group = parser.add_argument_group("probe")
    group.add_argument(
        "--sale-id",
        default=CANARY_SALE_ID,
        help="sale whose line the synthetic fan joins (default: %(default)s, the "
        "canary's own sale, created when missing)",
    )
    group.add_argument(
        "--inject-at",
        choices=INJECTION_STAGES,
        default=INJECTION_STAGES[0],
        help="stage where the synthetic fan enters: join (the browser's path), "
        "forward (join item written with your credentials, no Cognito) or "
        "admission (straight into the work queue, no join or forwarder) "
        "(default: %(default)s)",
    )
    defaults = ", ".join(
        f"{stage}={seconds:g}"
        for stage, seconds in DEFAULT_STAGE_DEADLINES_SECONDS.items()
    )
    group.add_argument(
        "--deadline",
        action="append",
        default=[],
        metavar="STAGE=SECONDS",
        help=f"deadline of one stage in seconds; repeat for more (default: {defaults})",
    )
    group.add_argument(
        "--total-deadline",
        type=float,
        default=DEFAULT_TOTAL_DEADLINE_SECONDS,
        metavar="SECONDS",
        help="deadline of the whole probe in seconds (default: %(default)s)",
    )
    group.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="seconds between two reads of the fan's item (default: %(default)s)",
    )


def probe_config_from_args(args: argparse.Namespace) -> ProbeConfig:
    """Build a probe configuration from the probe options."""
    deadlines = dict(DEFAULT_STAGE_DEADLINES_SECONDS)
    for text in args.deadline:
        stage, _, seconds = text.partition("=")
        try:
            deadlines[stage.strip()] = float(seconds)
        except ValueError as exc:
            raise InvalidProbeConfigError(
                f"--deadline {text!r} is invalid; write STAGE=SECONDS, such as "
                "admission=20."
            ) from exc
    return ProbeConfig(
        sale_id=args.sale_id,
        inject_at=args.inject_at,
        stage_deadlines_seconds=deadlines,
        total_deadline_seconds=args.total_deadline,
        poll_interval_seconds=args.poll_interval,
    )


def run_canary(args: argparse.Namespace) -> int:
    from synthetic.probe import Probe
    from synthetic.target import resolve_target

    config = probe_config_from_args(args)
    settings, resources = resolve_target(args)
    probe = Probe(settings, resources, config)
    try:
        result = probe.run()
    finally:
        probe.close()
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        _print_result(result)
    return EXIT_HEALTHY if result.healthy else EXIT_UNHEALTHY


def _print_result(result: ProbeResult) -> None:
    verdict = "healthy" if result.healthy else "UNHEALTHY"
    print(
        f"canary {verdict}: sale {result.sale_id!r}, probe {result.probe_id}, "
        f"{result.duration_seconds:.2f} s in all"
    )
    for stage in result.stages:
        line = (
            f"  {stage.stage:<10} {stage.outcome:<10} {stage.duration_seconds:7.2f} s"
        )
        if stage.reason:
            line += f"  {stage.reason}"
        print(line)
    for error in result.cleanup_errors:
        print(f"  cleanup    failed      {error}")
    if not result.healthy:
        print(result.summary(), file=sys.stderr)
