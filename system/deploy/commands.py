"""The ``boxoffice deploy`` subcommand: builds to environments, and rollback."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from system.deploy.changeset import ResourceChange
    from system.settings import Settings


def register(subparsers: Any) -> None:
    """Add ``deploy`` to the ``boxoffice`` parser."""
    parser = subparsers.add_parser(
        "deploy",
        help="deploy a build to an environment (dev, staging, production)",
        description="Deploy a build to an environment's stack and point the "
        "environment's alias of the shared forwarder function at the build's "
        "Lambda version; roll an environment back; or create and update the "
        "stack that every environment shares. Targets the embedded stack "
        "unless --region, --profile or --endpoint-url is given.",
    )
    _add_request_options(parser)
    _add_target_options(parser)
    parser.set_defaults(handler=run_deploy)


def _add_request_options(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--build",
        type=int,
        metavar="N",
        help="build number to deploy; a new build also needs --commit",
    )
    action.add_argument(
        "--rollback",
        action="store_true",
        help="point the environment's alias back at its previous release",
    )
    action.add_argument(
        "--shared",
        action="store_true",
        help="create or update the shared stack (needs administrator rights)",
    )
    parser.add_argument(
        "--env",
        dest="environment",
        metavar="NAME",
        help="environment name, such as dev, staging or production",
    )
    parser.add_argument(
        "--commit",
        metavar="SHA",
        help="git commit the build was made from (required for a new build)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a parameter of the environment template, such as "
        "StreamBatchSize=100; it keeps its value in later deploys (repeatable)",
    )
    parser.add_argument(
        "--deploy-principal",
        metavar="ARN",
        help="with --shared: IAM principal that may assume the deploy role "
        "(default: any principal of the account allowed to assume it)",
    )


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target (default: the embedded stack)")
    target.add_argument("--region", help="AWS region (env: AWS_REGION)")
    target.add_argument(
        "--profile", help="AWS named profile for credentials (env: AWS_PROFILE)"
    )
    target.add_argument(
        "--endpoint-url",
        help="endpoint of every AWS service, for an emulator (env: AWS_ENDPOINT_URL)",
    )
    target.add_argument(
        "--home",
        help="state folder of the embedded stack (env: BOXOFFICE_HOME, "
        "default: ~/.boxoffice)",
    )


def run_deploy(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from system.deploy.errors import DeployError, InvalidDeployRequestError

    if not args.shared and not args.environment:
        raise InvalidDeployRequestError(
            "Missing --env NAME: name the environment to deploy to or roll back."
        )
    if args.commit and args.build is None:
        raise InvalidDeployRequestError("--commit goes with --build N.")
    settings = _settings(args)
    try:
        if args.shared:
            return _run_shared(settings, args.deploy_principal)
        if args.rollback:
            return _run_rollback(settings, args.environment)
        return _run_build(settings, args)
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(
            f"An AWS request failed: {exc}. Check the credentials, --region and "
            "the rights of the role you deploy with, then run the command again."
        ) from exc


def _run_build(settings: Settings, args: argparse.Namespace) -> int:
    from system.deploy.environment import deploy

    result = deploy(
        settings,
        args.environment,
        args.build,
        args.commit,
        parameters=_parse_parameters(args.parameter),
        progress=_progress,
        report=_report,
    )
    build = result.build
    named = f"build {build.build} (commit {build.commit[:12]})"
    if not result.changed:
        print(
            f"{named[0].upper()}{named[1:]} is already deployed to "
            f"{result.environment} as version {build.version}; nothing changed."
        )
        return 0
    if not result.changes:
        print(f"Stack boxoffice-{result.environment} is up to date.")
    source = "published" if result.published else "reused"
    was = (
        f"was version {result.previous_version}"
        if result.previous_version
        else "new alias"
    )
    print(
        f"Deployed {named} to {result.environment}: alias {result.environment} "
        f"-> version {build.version} ({source}; {was})."
    )
    return 0


def _run_rollback(settings: Settings, environment: str) -> int:
    from system.deploy.environment import roll_back

    result = roll_back(settings, environment, progress=_progress)
    left, restored = result.left, result.restored
    print(
        f"Rolled back {environment}: alias {environment} -> version "
        f"{restored.version}, build {restored.build} (commit "
        f"{restored.commit[:12]}), away from version {left.version}, build "
        f"{left.build}."
    )
    if result.alias_was is not None and result.alias_was != left.version:
        print(
            f"Note: the alias pointed at version {result.alias_was}, not at the "
            f"recorded version {left.version}; it was changed outside "
            "`boxoffice deploy`."
        )
    return 0


def _run_shared(settings: Settings, deploy_principal: str | None) -> int:
    from system import provision
    from system.clients import make_client
    from system.deploy import artifacts, bundle
    from system.deploy.shared import apply_shared, describe_shared

    existing = describe_shared(settings)
    code_key = None
    if existing is None:
        bucket = provision.code_bucket_name(settings)
        _progress("Packaging the forwarder for the shared function")
        package = bundle.build_package()
        code_key = artifacts.package_key(package)
        artifacts.put_artifact(
            make_client(settings, "s3"), settings.region, bucket, code_key, package
        )
    else:
        bucket = existing.code_bucket
    resources, changes = apply_shared(
        settings,
        bucket,
        code_key,
        deploy_principal=deploy_principal,
        report=_report,
    )
    if existing is None:
        verb = "created"
    elif changes:
        verb = "updated"
    else:
        verb = "unchanged"
    print(f"Shared stack {resources.stack_name} {verb}.")
    print(f"  forwarder function: {resources.function_arn}")
    print(f"  deploy role:        {resources.deploy_role_arn}")
    print(f"  code bucket:        {resources.code_bucket}")
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    from system import embedded
    from system.errors import EmbeddedStackError
    from system.settings import Settings

    if args.region or args.profile or args.endpoint_url:
        return Settings.from_env(
            region=args.region, profile=args.profile, endpoint_url=args.endpoint_url
        )
    state = embedded.running_state(args.home)
    if state is None:
        raise EmbeddedStackError(
            "No embedded stack is running. Start one with `boxoffice up`, or "
            "pass --region (and --profile) to deploy to AWS."
        )
    return state.settings


def _parse_parameters(pairs: list[str]) -> dict[str, str]:
    from system.deploy.errors import InvalidDeployRequestError

    parsed = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise InvalidDeployRequestError(
                f"Invalid --parameter {pair!r}: write it as KEY=VALUE, such as "
                "StreamBatchSize=100."
            )
        parsed[key] = value
    return parsed


def _progress(message: str) -> None:
    print(f"... {message}", flush=True)


def _report(stack_name: str, changes: list[ResourceChange]) -> None:
    print(f"Changes to stack {stack_name}:")
    for change in changes:
        print(f"  {change.describe()}")
    if not changes:
        print("  (none)")
