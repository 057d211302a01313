"""Command-line options shared by every command that reaches a stack."""

from __future__ import annotations

import argparse

from system.settings import Settings


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """Add --stack, --region, --profile and --endpoint-url to ``parser``."""
    group = parser.add_argument_group("target stack (default: the embedded stack)")
    group.add_argument(
        "--stack",
        help="name of a deployed CloudFormation stack to use instead of the "
        "embedded one (env: BOXOFFICE_STACK)",
    )
    group.add_argument("--region", help="AWS region of the stack (env: AWS_REGION)")
    group.add_argument(
        "--profile", help="AWS named profile for credentials (env: AWS_PROFILE)"
    )
    group.add_argument(
        "--endpoint-url",
        help="endpoint of every AWS service, for an emulator (env: AWS_ENDPOINT_URL)",
    )
    group.add_argument(
        "--home",
        help="state folder of the embedded stack (env: BOXOFFICE_HOME, "
        "default: ~/.boxoffice)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build settings from the target options, falling back to the environment."""
    return Settings.from_env(
        stack_name=args.stack,
        region=args.region,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
    )


def targets_deployed_stack(args: argparse.Namespace) -> bool:
    """Return whether the options name a deployed stack rather than the embedded one."""
    return bool(args.stack or args.endpoint_url)
