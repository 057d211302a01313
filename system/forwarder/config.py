"""The forwarder's runtime settings, read from the environment's config table."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from botocore.exceptions import ClientError

from system import schema
from system.errors import ForwarderConfigError

# The template sets the table name. A function shared by several environments
# through aliases sets the pattern instead, and the alias it was invoked
# through fills in the environment.
CONFIG_TABLE_ENV = "BOXOFFICE_CONFIG_TABLE"
CONFIG_TABLE_PATTERN_ENV = "BOXOFFICE_CONFIG_TABLE_PATTERN"
ENVIRONMENT_PLACEHOLDER = "{environment}"
# The shared function also sets the queue table's pattern, so the stream
# record's source ARN can name the environment when the invoked ARN does not.
QUEUE_TABLE_PATTERN_ENV = "BOXOFFICE_QUEUE_TABLE_PATTERN"
# arn:aws:lambda:region:account:function:name[:qualifier]
QUALIFIED_ARN_PARTS = 8


@dataclass(frozen=True)
class ForwarderConfig:
    """Tables and queues the forwarder uses; names match the config table's."""

    queue_table: str
    sales_table: str
    work_queue_url: str
    dead_letter_queue_url: str

    @classmethod
    def from_values(cls, values: Mapping[str, object], table: str) -> ForwarderConfig:
        """Build the settings from config-table values keyed by name.

        Raises ``ForwarderConfigError`` naming each setting that is missing or
        not a non-empty string.
        """
        names = [field.name for field in fields(cls)]
        missing = [
            name
            for name in names
            if not isinstance(values.get(name), str) or not values.get(name)
        ]
        if missing:
            raise ForwarderConfigError(
                f"Config table {table!r} has no value for {', '.join(missing)}. "
                "Seed it with the stack's outputs (`boxoffice deploy` does this)."
            )
        return cls(**{name: str(values[name]) for name in names})


def config_table_name(
    environ: Mapping[str, str],
    invoked_function_arn: str,
    event_source_arn: str | None = None,
) -> str:
    """Return the config table's name for an invocation.

    ``BOXOFFICE_CONFIG_TABLE`` wins. Otherwise ``BOXOFFICE_CONFIG_TABLE_PATTERN``
    has its ``{environment}`` replaced by the alias at the end of the invoked
    ARN or, when that ARN names no alias, by the environment that
    ``BOXOFFICE_QUEUE_TABLE_PATTERN`` finds in the stream's ``event_source_arn``.
    Raises ``ForwarderConfigError`` when none of them gives a name.
    """
    name = environ.get(CONFIG_TABLE_ENV)
    if name:
        return name
    pattern = environ.get(CONFIG_TABLE_PATTERN_ENV)
    if not pattern:
        raise ForwarderConfigError(
            f"Neither {CONFIG_TABLE_ENV} nor {CONFIG_TABLE_PATTERN_ENV} is set. "
            "Set one of them in the function's environment."
        )
    environment = _environment_from_stream(
        environ.get(QUEUE_TABLE_PATTERN_ENV), invoked_function_arn, event_source_arn
    )
    if environment is None:
        environment = alias_name(invoked_function_arn)
    return pattern.replace(ENVIRONMENT_PLACEHOLDER, environment)


def _environment_from_stream(
    queue_pattern: str | None, invoked_function_arn: str, event_source_arn: str | None
) -> str | None:
    # NOTE: MiniStack 1.5.33 invokes a stream mapping that targets an alias
    # with the version's ARN, which names no alias; AWS passes the alias ARN.
    if not queue_pattern or not event_source_arn:
        return None
    parts = invoked_function_arn.split(":")
    qualifier = parts[-1] if len(parts) == QUALIFIED_ARN_PARTS else ""
    if qualifier and qualifier != "$LATEST" and not qualifier.isdigit():
        return None  # an alias names the environment
    # arn:aws:dynamodb:region:account:table/NAME/stream/LABEL
    resource = event_source_arn.split(":", 5)[-1].split("/")
    if len(resource) < 2 or resource[0] != "table":
        return None
    prefix, _, suffix = queue_pattern.partition(ENVIRONMENT_PLACEHOLDER)
    found = re.fullmatch(
        re.escape(prefix) + "([a-z][a-z0-9-]*)" + re.escape(suffix), resource[1]
    )
    return found.group(1) if found else None


def alias_name(invoked_function_arn: str) -> str:
    """Return the alias a function ARN is qualified with.

    Raises ``ForwarderConfigError`` for an unqualified ARN, ``$LATEST`` or a
    version number, which name no environment.
    """
    parts = invoked_function_arn.split(":")
    qualifier = parts[-1] if len(parts) == QUALIFIED_ARN_PARTS else ""
    if not qualifier or qualifier == "$LATEST" or qualifier.isdigit():
        raise ForwarderConfigError(
            f"The function was invoked as {invoked_function_arn!r}, which names "
            f"no alias, so {CONFIG_TABLE_PATTERN_ENV} cannot be filled in. Invoke "
            f"it through an environment's alias or set {CONFIG_TABLE_ENV}."
        )
    return qualifier


def read_config(dynamodb: Any, table: str) -> ForwarderConfig:
    """Read the forwarder's settings from the config table.

    ``dynamodb`` is a boto3 DynamoDB client. The table contains a few items, so
    one consistent scan reads them all.
    """
    values: dict[str, object] = {}
    paginator = dynamodb.get_paginator("scan")
    try:
        for page in paginator.paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                name = item.get(schema.CONFIG_NAME, {}).get("S")
                value = item.get(schema.CONFIG_VALUE, {}).get("S")
                if name is not None:
                    values[name] = value
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        raise ForwarderConfigError(
            f"Config table {table!r} does not exist. Check {CONFIG_TABLE_ENV} or "
            f"{CONFIG_TABLE_PATTERN_ENV} in the function's environment."
        ) from exc
    return ForwarderConfig.from_values(values, table)
