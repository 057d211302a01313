"""The deployments table (build to Lambda version) and each environment's releases.

A build item maps a build number and its commit to the Lambda version
published from it, and to where its package and environment template are
stored. A release item records one change of an environment's alias, in
order. Replaying an environment's releases, a deploy pushes a build and a
rollback pops one, so the top is what the alias points at and the item
below it is what a rollback returns to.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from system.deploy.errors import BuildConflictError, DeployError

DEPLOY = "deploy"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Build:
    """A published build: its commit, Lambda version and stored artifacts."""

    build: int
    commit: str
    version: str
    package_key: str
    template_key: str
    code_sha256: str
    published_at: float


@dataclass(frozen=True)
class Release:
    """One alias change of an environment: a deploy or a rollback."""

    environment: str
    sequence: int
    action: str  # DEPLOY or ROLLBACK
    build: int
    commit: str
    version: str
    released_at: float


def get_build(table: Any, build: int) -> Build | None:
    """Return the recorded build ``build``, or ``None`` if it was never published."""
    item = table.get_item(Key={"build": build}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    return _build_from_item(item)


def record_build(table: Any, build: Build) -> Build:
    """Record ``build`` unless it is recorded already; return the stored build.

    Raises ``BuildConflictError`` when the build number is stored with
    another commit, which happens when two pipelines reuse a number.
    """
    item = {key: _to_dynamodb(value) for key, value in asdict(build).items()}
    try:
        table.put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(#b)",
            ExpressionAttributeNames={"#b": "build"},
        )
        return build
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    stored = get_build(table, build.build)
    if stored is None:
        raise DeployError(f"Build {build.build} vanished while it was recorded.")
    check_commit(stored, build.commit)
    return stored


def check_commit(stored: Build, commit: str | None) -> None:
    """Raise ``BuildConflictError`` unless ``commit`` is absent or the build's own."""
    if commit is None or stored.commit == commit:
        return
    raise BuildConflictError(
        f"Build {stored.build} was published from commit {stored.commit}, not "
        f"{commit}. A build number names one commit: give this commit a new "
        "build number, or omit --commit to deploy the recorded one."
    )


def releases(table: Any, environment: str) -> list[Release]:
    """Return every release of ``environment``, oldest first."""
    found: list[Release] = []
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "#e = :environment",
        "ExpressionAttributeNames": {"#e": "environment"},
        "ExpressionAttributeValues": {":environment": environment},
        "ConsistentRead": True,
    }
    while True:
        page = table.query(**kwargs)
        found.extend(_release_from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def live_releases(history: list[Release]) -> list[Release]:
    """Replay ``history``: return the deploys still in effect, the live one last."""
    stack: list[Release] = []
    for release in history:
        if release.action == ROLLBACK:
            if stack:
                stack.pop()
        else:
            stack.append(release)
    return stack


def record_release(
    table: Any,
    history: list[Release],
    environment: str,
    action: str,
    build: Build | Release,
) -> Release:
    """Append a release of ``build`` after ``history``; return it.

    The write is conditional on the sequence number being free, so two
    deploys to one environment at once cannot both record theirs.
    """
    sequence = history[-1].sequence + 1 if history else 1
    release = Release(
        environment=environment,
        sequence=sequence,
        action=action,
        build=build.build,
        commit=build.commit,
        version=build.version,
        released_at=time.time(),
    )
    item = {key: _to_dynamodb(value) for key, value in asdict(release).items()}
    try:
        table.put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(#s)",
            ExpressionAttributeNames={"#s": "sequence"},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        raise DeployError(
            f"Another deploy to {environment!r} recorded release {sequence} at "
            "the same time. Check the environment's alias, then deploy again."
        ) from exc
    return release


def _to_dynamodb(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def _build_from_item(item: dict[str, Any]) -> Build:
    return Build(
        build=int(item["build"]),
        commit=str(item["commit"]),
        version=str(item["version"]),
        package_key=str(item["package_key"]),
        template_key=str(item["template_key"]),
        code_sha256=str(item["code_sha256"]),
        published_at=float(item["published_at"]),
    )


def _release_from_item(item: dict[str, Any]) -> Release:
    return Release(
        environment=str(item["environment"]),
        sequence=int(item["sequence"]),
        action=str(item["action"]),
        build=int(item["build"]),
        commit=str(item["commit"]),
        version=str(item["version"]),
        released_at=float(item["released_at"]),
    )
