"""Lambda entry point of the forwarder.

The clients and each config table's settings are built once per execution
environment (cold start) and reused by every invocation after it.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from botocore.config import Config

from system.forwarder.batch import AwsClients, forward_batch
from system.forwarder.config import ForwarderConfig, config_table_name, read_config

logger = Logger()

# A slow call must fail well within the function's 60 s timeout, so that only
# its records are reported for retry instead of the whole batch timing out.
RETRY_ATTEMPTS = 4
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10

_clients: AwsClients | None = None
# Keyed by table: one version may serve several environments through aliases,
# and they share warm execution environments.
_configs: dict[str, ForwarderConfig] = {}


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    """Number the new fans of a DynamoDB stream batch and queue them for windows.

    Parameters
    ----------
    event:
        The stream event; only INSERT records of the queue table are forwarded.
    context:
        The Lambda context; its ``invoked_function_arn`` names the alias when
        the config table is found through ``BOXOFFICE_CONFIG_TABLE_PATTERN``.

    Returns
    -------
    The records to retry, in the ReportBatchItemFailures format. A bad record
    is dead-lettered instead, and listed only when its dead letter could not
    be sent.

    Raises
    ------
    ForwarderConfigError
        When the config table or one of its settings is missing. Nothing was
        processed then, and the whole batch is retried.
    """
    clients = _aws_clients()
    config = _config(clients, context.invoked_function_arn, _event_source_arn(event))
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        logger.error("Ignored an event without a Records list")
        return {"batchItemFailures": []}
    outcome = forward_batch(records, config, clients)
    # Every numbering write comes back as a MODIFY record, so many batches
    # contain nothing to forward, and those are logged at debug level only.
    log = logger.debug if outcome.skipped == len(records) else logger.info
    log(
        "Forwarded a stream batch",
        extra={
            "records": len(records),
            "forwarded": outcome.forwarded,
            "resent": outcome.resent,
            "skipped": outcome.skipped,
            "dead_lettered": outcome.dead_lettered,
            "retried": len(outcome.failed_sequence_numbers),
        },
    )
    # NOTE: MiniStack 1.5.33's stream mapping ignores batchItemFailures and
    # moves past the whole batch, so there a record listed here is not
    # delivered again. On AWS the mapping retries from the first one listed.
    return outcome.response()


def _aws_clients() -> AwsClients:
    global _clients
    if _clients is None:
        # boto3 reads the region and AWS_ENDPOINT_URL from the environment,
        # which MiniStack sets to itself and AWS leaves unset.
        config = Config(
            retries={"max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )
        _clients = AwsClients(
            dynamodb=boto3.client("dynamodb", config=config),
            sqs=boto3.client("sqs", config=config),
        )
    return _clients


def _config(
    clients: AwsClients, invoked_function_arn: str, event_source_arn: str | None
) -> ForwarderConfig:
    table = config_table_name(os.environ, invoked_function_arn, event_source_arn)
    if table not in _configs:
        _configs[table] = read_config(clients.dynamodb, table)
        logger.info("Read the forwarder's settings", extra={"config_table": table})
    return _configs[table]


def _event_source_arn(event: Any) -> str | None:
    # Every record of a batch comes from the same stream.
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return None
    first = records[0]
    arn = first.get("eventSourceARN") if isinstance(first, dict) else None
    return arn if isinstance(arn, str) else None
