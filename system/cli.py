"""The ``boxoffice`` command: one entry point, one subcommand per job.

Each package adds its own subcommands through a ``register`` function, and
heavy imports happen inside the command handlers, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

from system.errors import BoxOfficeError

logger = logging.getLogger(__name__)

# Modules that define subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "system.commands",
    "loadtests.commands",
    "synthetic.commands",
    "monitors.commands",
    "system.deploy.commands",
    "system.web.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every installed subcommand."""
    parser = argparse.ArgumentParser(
        prog="boxoffice",
        description=(
            "Load tests and monitoring for a serverless ticket pre-sale queue, "
            "and the queue itself on an embedded AWS stack."
        ),
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on standard error (default: %(default)s)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that package's commands are not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``boxoffice`` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # A job runner or `timeout` stops a command with SIGTERM. Handled like
    # Ctrl-C, it lets a command stop the processes it started.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code: int = args.handler(args)
    except BoxOfficeError as exc:
        print(f"boxoffice {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"boxoffice {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
