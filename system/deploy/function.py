"""The shared forwarder function: publish a version per build, move aliases."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from system.deploy.errors import DeployError

logger = logging.getLogger(__name__)

UPDATE_POLL_SECONDS = 1
UPDATE_MAX_POLLS = 300


def publish_version(
    lambda_client: Any, function_name: str, bucket: str, key: str, description: str
) -> tuple[str, str]:
    """Load a package into the function and publish it; return version and hash.

    Lambda returns the existing version when the code and configuration
    equal the last published ones, so publishing twice is harmless.
    """
    updated = lambda_client.update_function_code(
        FunctionName=function_name, S3Bucket=bucket, S3Key=key
    )
    code_sha256: str = updated["CodeSha256"]
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=function_name,
        WaiterConfig={"Delay": UPDATE_POLL_SECONDS, "MaxAttempts": UPDATE_MAX_POLLS},
    )
    try:
        # CodeSha256 makes the publish fail if another deploy replaced the
        # code in between, instead of publishing that deploy's code.
        published = lambda_client.publish_version(
            FunctionName=function_name,
            CodeSha256=code_sha256,
            Description=description[:256],
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "PreconditionFailedException":
            raise
        raise DeployError(
            f"Another deploy changed the code of {function_name} while this one "
            "published it. Deploy again."
        ) from exc
    version: str = published["Version"]
    logger.info("Published %s version %s (%s)", function_name, version, description)
    return version, code_sha256


def alias_version(lambda_client: Any, function_name: str, alias: str) -> str | None:
    """Return the version ``alias`` points at, or ``None`` if there is no alias."""
    try:
        found = lambda_client.get_alias(FunctionName=function_name, Name=alias)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return None
    return str(found["FunctionVersion"])


def point_alias(
    lambda_client: Any,
    function_name: str,
    alias: str,
    version: str,
    description: str,
) -> None:
    """Point ``alias`` at ``version``, creating the alias if needed."""
    if alias_version(lambda_client, function_name, alias) is None:
        lambda_client.create_alias(
            FunctionName=function_name,
            Name=alias,
            FunctionVersion=version,
            Description=description[:256],
        )
    else:
        lambda_client.update_alias(
            FunctionName=function_name,
            Name=alias,
            FunctionVersion=version,
            Description=description[:256],
        )
    logger.info("Pointed alias %s of %s at version %s", alias, function_name, version)
