"""The ``pages`` subcommand: where the fans' pages are, and their config.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from urllib.parse import quote

from system.aws_options import (
    add_target_options,
    settings_from_args,
    targets_deployed_stack,
)

CONFIG_FILE = "config.json"


def register(subparsers: Any) -> None:
    """Add the ``pages`` subcommand to the ``boxoffice`` parser."""
    pages = subparsers.add_parser(
        "pages",
        help="show the fans' pages, or write their config.json for a deployment",
        description="Print the address of the fans' countdown page on the "
        "embedded stack, or, with --write-config, write the config.json that "
        "the built pages (system/web/dist) read, for the stack the options "
        "name. Upload that folder to an S3 bucket behind a CDN to serve the "
        "pages on AWS.",
    )
    pages.add_argument(
        "--sale-id",
        help="sale the pages show by default (env: BOXOFFICE_SALE_ID, "
        "default: the embedded stack's sale)",
    )
    pages.add_argument(
        "--write-config",
        metavar="DIR",
        type=Path,
        help=f"write {CONFIG_FILE} into DIR instead of printing the address",
    )
    add_target_options(pages)
    pages.set_defaults(handler=run_pages)


def run_pages(args: argparse.Namespace) -> int:
    from system import embedded
    from system.stack import describe_stack
    from system.web.serve import WebConfig

    state = None
    if targets_deployed_stack(args):
        settings = settings_from_args(args)
    else:
        state = embedded.require_running(args.home)
        settings = state.settings
    config = WebConfig.from_stack(settings, describe_stack(settings), args.sale_id)
    if args.write_config is not None:
        args.write_config.mkdir(parents=True, exist_ok=True)
        path = args.write_config / CONFIG_FILE
        path.write_text(config.to_json())
        print(f"Wrote {path} for stack {settings.stack_name}")
        return 0
    if state is None:
        print(config.to_json(), end="")
        return 0
    print(f"Countdown page: {state.ticketing_url}/?sale={quote(config.sale_id)}")
    print(
        f"Queue page:     {state.ticketing_url}/queue.html?sale={quote(config.sale_id)}"
    )
    return 0
