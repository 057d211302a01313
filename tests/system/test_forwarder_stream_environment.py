"""The shared forwarder finds its environment from the stream when no alias names it."""

from __future__ import annotations

import pytest

from system.errors import ForwarderConfigError
from system.forwarder.config import config_table_name

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:boxoffice-forwarder"
STREAM_ARN = (
    "arn:aws:dynamodb:eu-west-1:123456789012:table/boxoffice-{table}/stream/"
    "2026-12-04T16:26:57.053"
)
SHARED_ENVIRON = {
    "BOXOFFICE_CONFIG_TABLE_PATTERN": "boxoffice-{environment}-config",
    "BOXOFFICE_QUEUE_TABLE_PATTERN": "boxoffice-{environment}-queue",
}


@pytest.mark.parametrize(
    "arn",
    [FUNCTION_ARN, f"{FUNCTION_ARN}:$LATEST", f"{FUNCTION_ARN}:7"],
    ids=["unqualified", "latest", "version"],
)
def test_environment_from_stream(arn: str) -> None:
    stream = STREAM_ARN.format(table="staging-2-queue")

    name = config_table_name(SHARED_ENVIRON, arn, stream)

    assert name == "boxoffice-staging-2-config"


def test_alias_wins_over_stream() -> None:
    stream = STREAM_ARN.format(table="staging-queue")

    name = config_table_name(SHARED_ENVIRON, f"{FUNCTION_ARN}:dev", stream)

    assert name == "boxoffice-dev-config"


@pytest.mark.parametrize(
    "table",
    ["local-QueueTable-1A2B3C", "staging-sales", "Staging-queue"],
)
def test_stream_of_other_table_names_no_environment(table: str) -> None:
    stream = STREAM_ARN.format(table=table)

    with pytest.raises(ForwarderConfigError, match="names no alias"):
        config_table_name(SHARED_ENVIRON, f"{FUNCTION_ARN}:3", stream)


def test_stream_ignored_without_queue_pattern() -> None:
    environ = {"BOXOFFICE_CONFIG_TABLE_PATTERN": "boxoffice-{environment}-config"}
    stream = STREAM_ARN.format(table="staging-queue")

    with pytest.raises(ForwarderConfigError, match="names no alias"):
        config_table_name(environ, f"{FUNCTION_ARN}:3", stream)
