"""The ``boxoffice monitor`` subcommand: the scheduled canary with /metrics."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from monitors.alerting import DEFAULT_ALERT_AFTER, DEFAULT_ALERT_WINDOW
from monitors.monitor import (
    DEFAULT_FUNNEL_INTERVAL_SECONDS,
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_METRICS_HOST,
    DEFAULT_METRICS_PORT,
)
from monitors.notify import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT_SECONDS
from synthetic.commands import add_probe_options
from system.aws_options import add_target_options

if TYPE_CHECKING:  # the modules load in the handlers, so --help stays fast
    from monitors.monitor import MonitorConfig
    from monitors.notify import WebhookNotifier
    from synthetic.result import ProbeResult


def register(subparsers: Any) -> None:
    """Add ``monitor`` to the ``boxoffice`` parser."""
    monitor = subparsers.add_parser(
        "monitor",
        help="run the canary on a schedule, serve /metrics and send alerts",
        description="Run the canary probe every interval (never two at once), "
        "poll the funnel's numbers from the stack, serve both on /metrics and "
        "notify webhooks when M of the last N probes failed and again when "
        "the canary recovers. Runs until interrupted or --duration ends.",
    )
    add_target_options(monitor)
    add_probe_options(monitor)
    schedule = monitor.add_argument_group("schedule")
    schedule.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="seconds between two probes (default: %(default)s)",
    )
    schedule.add_argument(
        "--jitter",
        type=float,
        metavar="SECONDS",
        help="each probe starts up to this many seconds late (default: a tenth "
        "of the interval)",
    )
    schedule.add_argument(
        "--funnel-interval",
        type=float,
        default=DEFAULT_FUNNEL_INTERVAL_SECONDS,
        metavar="SECONDS",
        help="seconds between two polls of the funnel's numbers; 0 turns the "
        "poll off (default: %(default)s)",
    )
    schedule.add_argument(
        "--funnel-sale",
        action="append",
        default=[],
        metavar="SALE_ID",
        help="sale whose counters are polled; repeat for more (default: every "
        "sale on the stack)",
    )
    schedule.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until interrupted)",
    )
    _add_alert_options(monitor)
    _add_metrics_options(monitor)
    monitor.set_defaults(handler=run_monitor)


def _add_alert_options(parser: argparse.ArgumentParser) -> None:
    alerts = parser.add_argument_group("alerting")
    alerts.add_argument(
        "--alert-after",
        type=int,
        default=DEFAULT_ALERT_AFTER,
        metavar="M",
        help="fire when M of the last N probes failed (default: %(default)s)",
    )
    alerts.add_argument(
        "--alert-window",
        type=int,
        default=DEFAULT_ALERT_WINDOW,
        metavar="N",
        help="the N latest probes the alert counts (default: %(default)s)",
    )
    alerts.add_argument(
        "--recover-after",
        type=int,
        metavar="K",
        help="resolve after K probes in a row passed (default: N - M + 1)",
    )
    alerts.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        metavar="URL",
        help="send alerts as Alertmanager's webhook payload to URL; repeat for more",
    )
    alerts.add_argument(
        "--slack-webhook-url",
        action="append",
        default=[],
        metavar="URL",
        help="send alerts as a Slack incoming-webhook payload to URL",
    )
    alerts.add_argument(
        "--webhook-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="timeout of one webhook request (default: %(default)s)",
    )
    alerts.add_argument(
        "--webhook-attempts",
        type=int,
        default=DEFAULT_ATTEMPTS,
        metavar="COUNT",
        help="attempts per notification before it is counted as failed "
        "(default: %(default)s)",
    )


def _add_metrics_options(parser: argparse.ArgumentParser) -> None:
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        help="address /metrics listens on (default: %(default)s)",
    )
    metrics.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="port of /metrics; 0 picks a free one (default: %(default)s)",
    )


def monitor_config_from_args(args: argparse.Namespace) -> MonitorConfig:
    """Build the monitor configuration from the schedule and alert options."""
    from monitors.monitor import MonitorConfig

    return MonitorConfig(
        interval_seconds=args.interval,
        jitter_seconds=args.jitter,
        alert_after=args.alert_after,
        alert_window=args.alert_window,
        recover_after=args.recover_after,
        funnel_interval_seconds=args.funnel_interval or None,
        funnel_sale_ids=tuple(args.funnel_sale),
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port,
    )


def notifiers_from_args(args: argparse.Namespace) -> list[WebhookNotifier]:
    """Build one notifier per webhook URL option."""
    from monitors.notify import ALERTMANAGER, SLACK, WebhookNotifier

    targets = [(url, ALERTMANAGER) for url in args.webhook_url]
    targets += [(url, SLACK) for url in args.slack_webhook_url]
    return [
        WebhookNotifier(
            url,
            kind,
            timeout_seconds=args.webhook_timeout,
            attempts=args.webhook_attempts,
        )
        for url, kind in targets
    ]


def run_monitor(args: argparse.Namespace) -> int:
    from monitors.monitor import Monitor
    from synthetic.commands import probe_config_from_args
    from synthetic.probe import Probe
    from synthetic.target import resolve_target

    if args.log_level != "DEBUG":
        # APScheduler logs every job run at INFO; the monitor prints its own line.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    probe_config = probe_config_from_args(args)
    config = monitor_config_from_args(args)
    settings, resources = resolve_target(args)
    probe = Probe(settings, resources, probe_config)
    monitor = Monitor(
        probe, config, notifiers=notifiers_from_args(args), on_result=_print_run
    )
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        monitor.start()
        where = (
            f"http://{config.metrics_host}:{monitor.metrics_port}/metrics"
            if monitor.metrics_port is not None
            else "not served"
        )
        print(
            f"Monitoring stack {resources.stack_name!r}, sale "
            f"{probe_config.sale_id!r}: a probe every {config.interval_seconds:g} s; "
            f"metrics {where}. "
            "Stop with Ctrl-C.",
            flush=True,
        )
        stop.wait(args.duration)
    finally:
        monitor.stop()
        probe.close()
        signal.signal(signal.SIGTERM, previous)
    return 0


def _print_run(result: ProbeResult | None, outcome: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    detail = result.summary() if result is not None else "the probe raised; see the log"
    print(f"{stamp} canary {outcome}: {detail}", flush=True)
