"""Run the window assignment processor: ``python -m system.windows``.

The stack comes from the usual environment (``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``AWS_PROFILE``, ``BOXOFFICE_STACK``). The processor signs
purchase tokens with ``BOXOFFICE_TOKEN_SECRET`` (or the file named by
``BOXOFFICE_TOKEN_SECRET_FILE``) and builds purchase URLs on
``BOXOFFICE_TICKETING_URL``. It stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from prometheus_client import start_http_server

from monitors.metrics import window_metrics, work_queue_metrics
from system import tokens
from system.clients import make_client
from system.errors import BoxOfficeError
from system.settings import Settings
from system.stack import describe_stack
from system.windows.errors import ProcessorConfigError
from system.windows.processor import (
    POLL_INTERVAL_SECONDS,
    RESCAN_INTERVAL_SECONDS,
    VISIBILITY_TIMEOUT_SECONDS,
    Processor,
    ProcessorOptions,
)

logger = logging.getLogger("system.windows")

DEFAULT_METRICS_PORT = 9101
METRICS_HOST = "127.0.0.1"
# SQS accepts visibility timeouts up to 12 hours. Held messages are extended
# once half their timeout is left, so the other half must cover an iteration.
MIN_VISIBILITY_TIMEOUT_SECONDS = 2
MAX_VISIBILITY_TIMEOUT_SECONDS = 43200


def build_parser() -> argparse.ArgumentParser:
    """Return the processor's command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m system.windows",
        description="Admit fans from the work queue to each sale's ticket-issuing "
        "windows, and free the windows that fans let lapse or that a sell-out "
        "closes.",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        metavar="PORT",
        help=f"serve Prometheus metrics on {METRICS_HOST}:PORT/metrics, the port "
        "dashboards/prometheus.yml scrapes (default: %(default)s; 0 for none)",
    )
    parser.add_argument(
        "--poll-interval-seconds",
        metavar="SECONDS",
        type=_positive_float,
        default=POLL_INTERVAL_SECONDS,
        help="seconds to sleep when an iteration found nothing to do "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--rescan-interval-seconds",
        metavar="SECONDS",
        type=_positive_float,
        default=RESCAN_INTERVAL_SECONDS,
        help="seconds between reads of the sales table, which find new sales "
        "and sell-outs (default: %(default)s)",
    )
    parser.add_argument(
        "--visibility-timeout-seconds",
        metavar="SECONDS",
        type=_visibility_timeout,
        default=VISIBILITY_TIMEOUT_SECONDS,
        help="visibility timeout, in seconds, of the work messages the processor "
        "keeps in flight; after a crash they return to the queue this much later "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("BOXOFFICE_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on standard error (env: BOXOFFICE_LOG_LEVEL, "
        "default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the processor until SIGTERM or SIGINT; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("Received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        processor = _build_processor(args, stop)
    except BoxOfficeError as exc:
        print(f"system.windows: error: {exc}", file=sys.stderr)
        return 2
    if args.metrics_port:
        try:
            start_http_server(args.metrics_port, addr=METRICS_HOST)
        except OSError as exc:
            print(
                f"system.windows: error: cannot serve metrics on "
                f"{METRICS_HOST}:{args.metrics_port}: {exc}. Pass another "
                "--metrics-port.",
                file=sys.stderr,
            )
            return 2
        logger.info("Serving metrics on %s:%d", METRICS_HOST, args.metrics_port)
    processor.run()
    return 0


def _build_processor(args: argparse.Namespace, stop: threading.Event) -> Processor:
    ticketing_url = os.environ.get("BOXOFFICE_TICKETING_URL", "").strip()
    if not ticketing_url:
        raise ProcessorConfigError(
            "BOXOFFICE_TICKETING_URL is not set. Set it to the ticketing "
            "service's base URL, such as http://127.0.0.1:8000; purchase URLs "
            "are built on it."
        )
    secret = tokens.load_secret()
    settings = Settings.from_env()
    resources = describe_stack(settings)
    options = ProcessorOptions(
        poll_interval_seconds=args.poll_interval_seconds,
        rescan_interval_seconds=args.rescan_interval_seconds,
        visibility_timeout_seconds=args.visibility_timeout_seconds,
    )
    return Processor(
        dynamodb=make_client(settings, "dynamodb"),
        sqs=make_client(settings, "sqs"),
        resources=resources,
        secret=secret,
        ticketing_url=ticketing_url,
        metrics=window_metrics(),
        queue_metrics=work_queue_metrics(),
        options=options,
        stop=stop,
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a positive number of seconds"
        )
    return value


def _visibility_timeout(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not MIN_VISIBILITY_TIMEOUT_SECONDS <= value <= MAX_VISIBILITY_TIMEOUT_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of seconds from "
            f"{MIN_VISIBILITY_TIMEOUT_SECONDS} to "
            f"{MAX_VISIBILITY_TIMEOUT_SECONDS}"
        )
    return value


if __name__ == "__main__":
    sys.exit(main())
