"""Subcommands for the embedded stack: up, down, status and sale."""

from __future__ import annotations

import argparse
import json
from typing import Any

from system.aws_options import add_target_options, settings_from_args
from system.sale import (
    DEFAULT_CLAIM_TIMEOUT_SECONDS,
    DEFAULT_SALE_ID,
    DEFAULT_SESSION_SECONDS,
    DEFAULT_STOCK,
    DEFAULT_WINDOW_COUNT,
    SaleConfig,
)


def register(subparsers: Any) -> None:
    """Add the embedded-stack subcommands to the ``boxoffice`` parser."""
    up = subparsers.add_parser(
        "up",
        help="start the embedded stack on 127.0.0.1",
        description="Start MiniStack on 127.0.0.1, deploy the stack's "
        "CloudFormation template to it, configure a sale and start the window "
        "processor and the ticketing service.",
    )
    up.add_argument(
        "--home", help="state folder (env: BOXOFFICE_HOME, default: ~/.boxoffice)"
    )
    up.add_argument("--port", type=int, help="MiniStack port (default: a free one)")
    up.add_argument(
        "--ticketing-port",
        type=int,
        help="ticketing service port (default: a free one)",
    )
    add_sale_options(up)
    add_prometheus_options(up)
    up.set_defaults(handler=run_up)

    down = subparsers.add_parser(
        "down",
        help="stop the embedded stack",
        description="Stop every process `boxoffice up` started, by PID.",
    )
    down.add_argument(
        "--home", help="state folder (env: BOXOFFICE_HOME, default: ~/.boxoffice)"
    )
    down.set_defaults(handler=run_down)

    status = subparsers.add_parser(
        "status",
        help="show the health and counters of a stack",
        description="Show health, fans waiting, work-queue depth and oldest "
        "message age, dead-letter depth, windows in use and tickets left.",
    )
    add_target_options(status)
    status.add_argument(
        "--sale-id",
        default=DEFAULT_SALE_ID,
        help="sale to report (default: %(default)s)",
    )
    status.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a table"
    )
    status.set_defaults(handler=run_status)

    sale = subparsers.add_parser(
        "sale",
        help="create or reset a sale on a stack",
        description="Create a sale, or reset an existing one with fresh counters.",
    )
    add_target_options(sale)
    add_sale_options(sale)
    sale.set_defaults(handler=run_sale)


def add_sale_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that configure a sale."""
    group = parser.add_argument_group("sale")
    group.add_argument(
        "--sale-id", default=DEFAULT_SALE_ID, help="sale id (default: %(default)s)"
    )
    group.add_argument(
        "--stock",
        type=int,
        default=DEFAULT_STOCK,
        help="tickets on sale (default: %(default)s)",
    )
    group.add_argument(
        "--windows",
        type=int,
        default=DEFAULT_WINDOW_COUNT,
        help="ticket-issuing windows W (default: %(default)s)",
    )
    group.add_argument(
        "--session-seconds",
        type=float,
        default=DEFAULT_SESSION_SECONDS,
        help="how long an admitted fan may keep a window, in seconds "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--claim-timeout-seconds",
        type=float,
        default=DEFAULT_CLAIM_TIMEOUT_SECONDS,
        help="how long an admitted fan has to open the purchase URL, in seconds "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--on-sale-in",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="seconds from now until the sale opens (default: open now)",
    )


def add_prometheus_options(parser: argparse.ArgumentParser) -> None:
    """Add the options that start a local Prometheus next to the stack."""
    group = parser.add_argument_group("prometheus")
    group.add_argument(
        "--prometheus",
        action="store_true",
        help="also start Prometheus (/usr/bin/prometheus) on 127.0.0.1 with "
        "dashboards/prometheus.yml and the alert rules",
    )
    group.add_argument(
        "--prometheus-port",
        type=int,
        help="Prometheus port (default: 9090, or a free one when 9090 is taken)",
    )


def sale_from_args(args: argparse.Namespace) -> SaleConfig:
    """Build a sale configuration from the sale options."""
    import time

    return SaleConfig(
        sale_id=args.sale_id,
        stock=args.stock,
        window_count=args.windows,
        session_seconds=args.session_seconds,
        claim_timeout_seconds=args.claim_timeout_seconds,
        on_sale_at=time.time() + args.on_sale_in if args.on_sale_in else 0.0,
    )


def run_up(args: argparse.Namespace) -> int:
    from system import embedded

    state = embedded.up(
        home=args.home,
        port=args.port,
        ticketing_port=args.ticketing_port,
        sale=sale_from_args(args),
        progress=lambda message: print(f"... {message}", flush=True),
    )
    if args.prometheus:
        _start_prometheus(state, args.prometheus_port)
    print(f"Embedded stack is up (state in {state.home}).")
    print(f"  AWS endpoint:      {state.endpoint_url}")
    print(f"  ticketing service: {state.ticketing_url}")
    print(
        f"  metrics:           http://127.0.0.1:{state.processor_metrics_port}"
        f"/metrics (windows), http://127.0.0.1:{state.ticketing_metrics_port}"
        "/metrics (ticketing)"
    )
    if state.prometheus_port:
        print(f"  prometheus:        http://127.0.0.1:{state.prometheus_port}")
    print(f"  stack:             {state.stack_name}, sale {args.sale_id!r}")
    print("Use it from a shell with:")
    print(
        f"  export AWS_ENDPOINT_URL={state.endpoint_url} AWS_REGION=us-east-1 "
        "AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test "
        "AWS_SECRET_ACCESS_KEY=test"
    )
    print("Stop it with `boxoffice down`.")
    return 0


def _start_prometheus(state: Any, port: int | None) -> None:
    from system import embedded, prometheus

    print("... Starting Prometheus", flush=True)
    try:
        prometheus.start(state, port=port)
    except BaseException:
        embedded.stop(state)
        raise


def run_down(args: argparse.Namespace) -> int:
    from system import embedded

    stopped = embedded.down(args.home)
    if not stopped:
        print("No embedded stack was running.")
        return 0
    print("Stopped " + ", ".join(stopped) + ".")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from system import embedded
    from system.funnel import read_snapshot
    from system.stack import describe_stack

    if args.stack or args.endpoint_url:
        settings = settings_from_args(args)
        processes: dict[str, bool] = {}
    else:
        state = embedded.require_running(args.home)
        settings = state.settings
        processes = {name: embedded._alive(pid) for name, pid in state.pids.items()}
    resources = describe_stack(settings)
    from system import schema
    from system.errors import InvalidSaleError

    if not schema.SALE_ID_PATTERN.fullmatch(args.sale_id):
        raise InvalidSaleError(
            f"Sale id {args.sale_id!r} is invalid: use 1 to 64 printable ASCII "
            "characters without spaces or '#'."
        )
    from system.clients import make_session
    from system.sale import get_sale

    sales = (
        make_session(settings)
        .resource("dynamodb", endpoint_url=settings.endpoint_url)
        .Table(resources.sales_table)
    )
    get_sale(sales, args.sale_id)  # raises SaleNotFoundError with the fix
    snapshot = read_snapshot(settings, resources, args.sale_id)
    if args.json:
        print(json.dumps({"processes": processes, **snapshot.as_dict()}, indent=2))
        return 0
    _print_status(settings.stack_name, processes, snapshot.as_dict())
    healthy = all(processes.values())
    return 0 if healthy else 1


def run_sale(args: argparse.Namespace) -> int:
    from system import embedded, provision
    from system.stack import describe_stack

    if args.stack or args.endpoint_url:
        settings = settings_from_args(args)
    else:
        state = embedded.require_running(args.home)
        settings = state.settings
    config = sale_from_args(args)
    provision.configure_sale(settings, describe_stack(settings), config)
    print(
        f"Sale {config.sale_id!r}: {config.stock} tickets, "
        f"{config.window_count} windows."
    )
    return 0


def _print_status(stack: str, processes: dict[str, bool], data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{stack}: sale {data['sale_id']}", show_header=False)
    for name, alive in processes.items():
        table.add_row(f"process {name}", "running" if alive else "[red]stopped[/red]")
    rows = [
        ("fans numbered", data["numbered"]),
        ("fans waiting", data["fans_waiting"]),
        ("now serving (queue number)", data["serving"]),
        ("admitted", data["admitted"]),
        ("admission rate (fans/s)", f"{data['admission_rate']:.2f}"),
        ("work-queue depth", data["work_queue_depth"]),
        ("oldest message age (s)", f"{data['oldest_message_age_seconds']:.1f}"),
        ("dead-letter depth (forwarder)", data["dead_letter_depth"]),
        ("dead-letter depth (work queue)", data["work_dead_letter_depth"]),
        ("windows in use", f"{data['windows_in_use']} of {data['window_count']}"),
        ("tickets left", f"{data['tickets_left']} of {data['stock']}"),
        ("sold out", "yes" if data["sold_out"] else "no"),
        ("forwarder bad records", data["forwarder_bad_records"]),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    Console().print(table)
