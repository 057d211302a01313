"""Deploy a build to an environment, and roll an environment back.

The order of a deploy makes a failure leave the running environment as it
was. First the build is published (package, upload, Lambda version,
deployments table), which no environment runs yet. Then the environment's
stack is updated through a change set and its config table is seeded from
the stack's outputs. Only then does its alias move to the build's version
and the release get recorded. A new environment gets its alias first,
because its stream mapping needs one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from system import provision
from system.clients import make_client, make_session
from system.deploy import artifacts, bundle, records
from system.deploy.changeset import ResourceChange, apply_template, stack_status
from system.deploy.errors import (
    BuildConflictError,
    BuildNotFoundError,
    InvalidDeployRequestError,
    NothingToRollBackError,
)
from system.deploy.function import alias_version, point_alias, publish_version
from system.deploy.records import Build, Release
from system.deploy.shared import (
    SharedResources,
    apply_shared,
    describe_shared,
    template_is_current,
)
from system.settings import Settings
from system.stack import READY_STATUSES, TEMPLATE_PATH, describe_stack

logger = logging.getLogger(__name__)

# The template's own AllowedPattern for EnvironmentName.
ENVIRONMENT_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,19}")
RESERVED_ENVIRONMENTS = {
    "local": "the embedded stack of `boxoffice up` is boxoffice-local",
    "shared": "the stack shared by every environment is boxoffice-shared",
}
COMMIT_PATTERN = re.compile(r"[0-9a-f]{7,40}")
# Set by every deploy; any other template parameter keeps its deployed value
# unless --parameter gives it again.
MANAGED_PARAMETERS = ("EnvironmentName", "SharedFunctionArn")

Progress = Callable[[str], None]
Report = Callable[[str, list[ResourceChange]], None]


@dataclass(frozen=True)
class DeployResult:
    """The outcome of a deploy to an environment."""

    environment: str
    build: Build
    previous_version: str | None  # the alias's version before, None if new
    changes: list[ResourceChange]
    published: bool  # this deploy published the build's Lambda version
    changed: bool  # False when the build was live already and nothing ran


@dataclass(frozen=True)
class RollbackResult:
    """The outcome of a rollback: the release it left and the one it restored."""

    environment: str
    left: Release
    restored: Release
    alias_was: str | None


def environment_stack_name(environment: str) -> str:
    """Return the CloudFormation stack name of ``environment``."""
    return f"boxoffice-{environment}"


def environment_settings(settings: Settings, environment: str) -> Settings:
    """Return ``settings`` aimed at the environment's stack."""
    return replace(settings, stack_name=environment_stack_name(environment))


def validate_environment(environment: str) -> None:
    """Raise ``InvalidDeployRequestError`` unless ``environment`` is a valid name."""
    if not ENVIRONMENT_PATTERN.fullmatch(environment):
        raise InvalidDeployRequestError(
            f"Invalid environment name {environment!r}: use a lowercase letter "
            "followed by up to 19 lowercase letters, digits or dashes, such as "
            "dev, staging or production."
        )
    if environment in RESERVED_ENVIRONMENTS:
        raise InvalidDeployRequestError(
            f"The environment name {environment!r} is reserved, because "
            f"{RESERVED_ENVIRONMENTS[environment]}. Choose another name."
        )


def deploy(
    settings: Settings,
    environment: str,
    build: int,
    commit: str | None = None,
    *,
    parameters: Mapping[str, str] | None = None,
    template_body: str | None = None,
    progress: Progress = logger.info,
    report: Report = lambda stack, changes: None,
) -> DeployResult:
    """Deploy build ``build`` to ``environment``; publish it first if it is new.

    A new build needs ``commit``; a recorded one reuses its Lambda version
    and the template stored with it, and ``commit``, if given, must match.
    ``parameters`` override the environment template's parameters, and
    ``template_body`` replaces ``system/template.yaml`` for a new build.
    Raises ``StackUpdateError`` when the stack update fails, and leaves the
    environment's alias and config as they were.
    """
    validate_environment(environment)
    _validate_build(build, commit)
    parameters = dict(parameters or {})
    shared = describe_shared(settings)
    if shared is not None and not template_is_current(settings):
        progress(
            "Warning: the shared stack runs another version of "
            "system/deploy/shared.yaml than this checkout. An administrator "
            "applies it with `boxoffice deploy --shared`."
        )
    stored = _recorded_build(settings, shared, build, commit, template_body)
    if (
        stored is not None
        and shared is not None
        and not parameters
        and _is_live(settings, shared, environment, stored)
    ):
        return DeployResult(environment, stored, stored.version, [], False, False)
    published = stored is None
    if stored is None:
        if commit is None:
            raise BuildNotFoundError(
                f"Build {build} has not been published yet. Pass --commit with "
                "the commit it was built from to package and publish it."
            )
        shared, stored = _publish(
            settings, shared, build, commit, template_body, progress, report
        )
    assert shared is not None  # _publish creates the shared stack if missing
    return _release(
        settings, shared, environment, stored, parameters, published, progress, report
    )


def roll_back(
    settings: Settings, environment: str, progress: Progress = logger.info
) -> RollbackResult:
    """Point the environment's alias back at the release before the live one.

    Only the code goes back: the stack and its config stay as the last
    deploy left them. Raises ``NothingToRollBackError`` when there is no
    earlier release.
    """
    validate_environment(environment)
    shared = describe_shared(settings)
    if shared is None:
        raise NothingToRollBackError(
            f"Nothing was ever deployed here: the stack boxoffice-shared does not "
            f"exist, so {environment!r} has no release to roll back to."
        )
    table = _table(settings, shared.releases_table)
    history = records.releases(table, environment)
    live = records.live_releases(history)
    if len(live) < 2:
        raise NothingToRollBackError(
            f"Environment {environment!r} has {len(live)} live release(s) and no "
            "earlier one to roll back to. Deploy the build you want with "
            "`boxoffice deploy --env NAME --build N`."
        )
    left, restored = live[-1], live[-2]
    lambda_client = make_client(settings, "lambda")
    was = alias_version(lambda_client, shared.function_name, environment)
    progress(f"Pointing alias {environment} at version {restored.version}")
    point_alias(
        lambda_client,
        shared.function_name,
        environment,
        restored.version,
        f"build {restored.build} commit {restored.commit} (rollback)",
    )
    records.record_release(table, history, environment, records.ROLLBACK, restored)
    return RollbackResult(environment, left, restored, was)


def template_parameters(template_body: str) -> list[str]:
    """Return the parameter names a CloudFormation YAML template declares."""
    document = yaml.load(template_body, Loader=_TemplateLoader)
    declared = document.get("Parameters") or {}
    return [str(name) for name in declared]


class _TemplateLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation's short tags as plain data."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    return None


_TemplateLoader.add_multi_constructor("!", _construct_tagged)


def _validate_build(build: int, commit: str | None) -> None:
    if build < 1:
        raise InvalidDeployRequestError(
            f"Invalid build number {build}: use the CI run's number, 1 or more."
        )
    if commit is not None and not COMMIT_PATTERN.fullmatch(commit):
        raise InvalidDeployRequestError(
            f"Invalid commit {commit!r}: give the git commit id in lowercase "
            "hex, 7 to 40 characters (`git rev-parse HEAD`)."
        )


def _recorded_build(
    settings: Settings,
    shared: SharedResources | None,
    build: int,
    commit: str | None,
    template_body: str | None,
) -> Build | None:
    if shared is None:
        return None
    stored = records.get_build(_table(settings, shared.deployments_table), build)
    if stored is None:
        return None
    records.check_commit(stored, commit)
    if template_body is not None and (
        artifacts.template_key(template_body) != stored.template_key
    ):
        raise BuildConflictError(
            f"Build {build} was published with another environment template. "
            "A build's template is fixed when it is published: give the new "
            "template a new build number."
        )
    return stored


def _is_live(
    settings: Settings, shared: SharedResources, environment: str, stored: Build
) -> bool:
    live = records.live_releases(
        records.releases(_table(settings, shared.releases_table), environment)
    )
    if not live or live[-1].build != stored.build:
        return False
    lambda_client = make_client(settings, "lambda")
    if alias_version(lambda_client, shared.function_name, environment) != (
        stored.version
    ):
        return False
    cloudformation = make_client(settings, "cloudformation")
    return stack_status(cloudformation, environment_stack_name(environment)) in (
        READY_STATUSES
    )


def _publish(
    settings: Settings,
    shared: SharedResources | None,
    build: int,
    commit: str,
    template_body: str | None,
    progress: Progress,
    report: Report,
) -> tuple[SharedResources, Build]:
    progress(f"Packaging the forwarder for build {build} (commit {commit})")
    package = bundle.build_package(build, commit)
    template = template_body if template_body is not None else TEMPLATE_PATH.read_text()
    bucket = shared.code_bucket if shared else provision.code_bucket_name(settings)
    package_key = artifacts.package_key(package)
    template_key = artifacts.template_key(template)

    s3 = make_client(settings, "s3")
    progress(f"Uploading the package to s3://{bucket}/{package_key}")
    artifacts.put_artifact(s3, settings.region, bucket, package_key, package)
    artifacts.put_artifact(s3, settings.region, bucket, template_key, template.encode())
    if shared is None:
        progress("Creating the shared stack boxoffice-shared")
        shared, _ = apply_shared(settings, bucket, package_key, report=report)

    progress(f"Publishing a version of {shared.function_name}")
    version, code_sha256 = publish_version(
        make_client(settings, "lambda"),
        shared.function_name,
        bucket,
        package_key,
        f"build {build} commit {commit}",
    )
    published = Build(
        build=build,
        commit=commit,
        version=version,
        package_key=package_key,
        template_key=template_key,
        code_sha256=code_sha256,
        published_at=time.time(),
    )
    stored = records.record_build(_table(settings, shared.deployments_table), published)
    return shared, stored


def _release(
    settings: Settings,
    shared: SharedResources,
    environment: str,
    stored: Build,
    parameters: dict[str, str],
    published: bool,
    progress: Progress,
    report: Report,
) -> DeployResult:
    lambda_client = make_client(settings, "lambda")
    description = f"build {stored.build} commit {stored.commit}"
    previous = alias_version(lambda_client, shared.function_name, environment)
    if previous is None:
        # The new stack's stream mapping targets the alias, so it must exist.
        # No fan reaches the alias before the stack exists.
        point_alias(
            lambda_client,
            shared.function_name,
            environment,
            stored.version,
            description,
        )

    changes = _apply_stack(
        settings, shared, environment, stored, parameters, progress, report
    )
    target = environment_settings(settings, environment)
    progress(f"Seeding the config table of {environment}")
    provision.seed_config(target, describe_stack(target))

    table = _table(settings, shared.releases_table)
    history = records.releases(table, environment)
    live = records.live_releases(history)
    progress(f"Pointing alias {environment} at version {stored.version}")
    point_alias(
        lambda_client, shared.function_name, environment, stored.version, description
    )
    moved = previous != stored.version or not live or live[-1].build != stored.build
    if moved:
        records.record_release(table, history, environment, records.DEPLOY, stored)
    changed = moved or bool(changes)
    return DeployResult(environment, stored, previous, changes, published, changed)


def _apply_stack(
    settings: Settings,
    shared: SharedResources,
    environment: str,
    stored: Build,
    parameters: dict[str, str],
    progress: Progress,
    report: Report,
) -> list[ResourceChange]:
    template = artifacts.get_text(
        make_client(settings, "s3"), shared.code_bucket, stored.template_key
    )
    stack_name = environment_stack_name(environment)
    managed = {"EnvironmentName": environment, "SharedFunctionArn": shared.function_arn}
    kept = tuple(
        name for name in template_parameters(template) if name not in MANAGED_PARAMETERS
    )
    progress(f"Applying stack {stack_name} through a change set")
    return apply_template(
        make_client(settings, "cloudformation"),
        stack_name,
        template,
        {**parameters, **managed},
        keep_previous=kept,
        role_arn=shared.cloudformation_role_arn,
        change_set_name=f"build-{stored.build}-{int(time.time())}",
        report=report,
    )


def _table(settings: Settings, name: str) -> Any:
    session = make_session(settings)
    return session.resource("dynamodb", endpoint_url=settings.endpoint_url).Table(name)
