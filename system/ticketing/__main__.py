"""Run the ticketing service: ``python -m system.ticketing --port P``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from prometheus_client import start_http_server

from monitors.metrics import ticketing_metrics
from system.errors import BoxOfficeError
from system.settings import Settings
from system.stack import describe_stack
from system.ticketing.app import create_app
from system.ticketing.service import TicketingService
from system.ticketing.store import TicketingTables
from system.tokens import load_secret
from system.web import serve as web_pages

logger = logging.getLogger("system.ticketing")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_METRICS_PORT = 9102


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the service's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m system.ticketing",
        description="Serve the purchase page and API of the ticketing service. "
        "The stack comes from AWS_ENDPOINT_URL, AWS_REGION and BOXOFFICE_STACK, "
        "the token secret from BOXOFFICE_TOKEN_SECRET(_FILE).",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to bind the API and /metrics to (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="TCP port of the API (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="TCP port of the Prometheus /metrics endpoint (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on standard error (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit code."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        service = build_service()
    except BoxOfficeError as exc:
        logger.error("Cannot start the ticketing service: %s", exc)
        return 2

    metrics_server, _ = start_http_server(args.metrics_port, addr=args.host)
    logger.info(
        "Ticketing service listening on http://%s:%d, metrics on port %d",
        args.host,
        args.port,
        args.metrics_port,
    )
    server = _make_server(service, args.host, args.port)
    _stop_on_signals(server)
    try:
        server.run()
    finally:
        metrics_server.shutdown()
    logger.info("Ticketing service stopped")
    return 0 if server.started else 1


def build_service() -> TicketingService:
    """Build the service for the stack and token secret the environment names."""
    settings = Settings.from_env()
    resources = describe_stack(settings)
    secret = load_secret()
    logger.info("Selling from the tables of stack %s", settings.stack_name)
    return TicketingService(
        TicketingTables.connect(settings, resources), secret, ticketing_metrics()
    )


def _make_server(service: TicketingService, host: str, port: int) -> uvicorn.Server:
    # No access log: the purchase page's URL carries the token, which must
    # never reach a log. Purchases log their own outcome with ids only.
    app = create_app(service)
    # The fans' countdown and queue pages and their config.json, on the same
    # origin as the purchase page, which reads the queue page's fan id.
    web_pages.mount(app, web_pages.config_from_env)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        lifespan="off",
    )
    return uvicorn.Server(config)


def _stop_on_signals(server: uvicorn.Server) -> None:
    # uvicorn handles SIGTERM and SIGINT while it serves: it stops accepting,
    # lets requests in flight finish, restores the handlers it found and then
    # raises the signal again (uvicorn 0.54). These handlers receive that
    # signal, so the process still stops the metrics server and exits with 0.
    def request_stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)


if __name__ == "__main__":
    sys.exit(main())
