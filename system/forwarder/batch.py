"""Forward one stream batch: number the new fans and send their work messages.

The steps run over the whole batch, so a batch of a hundred fans costs one
BatchGetItem, one counter update per sale, four BatchWriteItem requests and
ten SendMessageBatch requests. A bad record is dead-lettered and never fails the
batch. A record that meets an AWS error is reported for retry alone, and a
retried record neither takes a second number nor makes a second message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from botocore.exceptions import BotoCoreError, ClientError

from system import schema
from system.errors import SaleNotFoundError
from system.forwarder.config import ForwarderConfig
from system.forwarder.messages import send_dead_letters, send_work_messages
from system.forwarder.numbering import (
    NumberedFan,
    allocate_numbers,
    error_name,
    put_numbered_items,
    read_fan_states,
    write_number,
)
from system.forwarder.records import (
    BadRecord,
    BadRecordReason,
    FanJoin,
    SkippedRecord,
    parse_record,
)

logger = Logger(child=True)

# Numbering writes are independent of each other, so they run in parallel,
# within the ten connections of botocore's default connection pool.
WRITE_CONCURRENCY = 8
MAX_BATCH_WRITE_ITEMS = 25
MAX_LOGGED_KEYS_CHARS = 300
AWS_ERRORS = (ClientError, BotoCoreError)


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients the forwarder calls."""

    dynamodb: Any
    sqs: Any


@dataclass
class BatchOutcome:
    """Counts of what became of a batch's records, and the records to retry."""

    forwarded: int = 0  # fans numbered and sent by this invocation
    resent: int = 0  # work messages sent again for a redelivered record
    skipped: int = 0
    dead_lettered: int = 0
    failed_sequence_numbers: list[str] = field(default_factory=list)

    def fail(self, sequence_number: str | None) -> None:
        """Mark a record for retry. A record without a sequence number cannot be."""
        if sequence_number and sequence_number not in self.failed_sequence_numbers:
            self.failed_sequence_numbers.append(sequence_number)

    def response(self) -> PartialItemFailureResponse:
        """Return the handler's response in the ReportBatchItemFailures format."""
        return {
            "batchItemFailures": [
                {"itemIdentifier": sequence_number}
                for sequence_number in self.failed_sequence_numbers
            ]
        }


def forward_batch(
    records: Sequence[object],
    config: ForwarderConfig,
    clients: AwsClients,
    *,
    now: float | None = None,
) -> BatchOutcome:
    """Number the batch's new fans, send their work messages and dead-letter the rest.

    ``records`` is the ``Records`` list of a DynamoDB stream event, in stream
    order. Fans of one sale are numbered in that order.
    """
    started = time.time() if now is None else now
    outcome = BatchOutcome()
    joins, bad_records = _parse(records, outcome)
    fresh, resend = _check_redelivery(joins, config, clients, outcome, started)
    numbered, unknown_sale = _number(fresh, config, clients, outcome, started)
    bad_records.extend(unknown_sale)
    _send_work(numbered + resend, config, clients, outcome)
    _dead_letter(bad_records, config, clients, outcome)
    _count(config, clients, outcome)
    return outcome


def _parse(
    records: Sequence[object], outcome: BatchOutcome
) -> tuple[list[FanJoin], list[BadRecord]]:
    latest: dict[str, FanJoin] = {}
    bad_records: list[BadRecord] = []
    for raw in records:
        parsed = parse_record(raw)
        if isinstance(parsed, SkippedRecord):
            outcome.skipped += 1
        elif isinstance(parsed, BadRecord):
            bad_records.append(parsed)
        else:
            # A fan who left and joined again within one batch is numbered
            # once, for the later INSERT, which matches the item as it is.
            superseded = latest.pop(parsed.fan_id, None)
            if superseded is not None:
                outcome.skipped += 1
            latest[parsed.fan_id] = parsed
    return list(latest.values()), bad_records


def _check_redelivery(
    joins: list[FanJoin],
    config: ForwarderConfig,
    clients: AwsClients,
    outcome: BatchOutcome,
    now: float,
) -> tuple[list[FanJoin], list[NumberedFan]]:
    if not joins:
        return [], []
    states = read_fan_states(
        clients.dynamodb, config.queue_table, [join.fan_id for join in joins]
    )
    fresh: list[FanJoin] = []
    resend: list[NumberedFan] = []
    for join in joins:
        state = states.found.get(join.fan_id)
        if join.fan_id in states.unread:
            _log_retry(join, "read the fan's item", states.unread[join.fan_id])
            outcome.fail(join.sequence_number)
        elif state is None:
            logger.info("Skipped a fan whose item is gone", extra=_join_keys(join))
            outcome.skipped += 1
        elif not state.numbered_by(join):
            fresh.append(join)
        else:
            pending = state.pending_message(join, now)
            if pending is None:
                outcome.skipped += 1
            else:
                resend.append(pending)
    return fresh, resend


def _number(
    joins: list[FanJoin],
    config: ForwarderConfig,
    clients: AwsClients,
    outcome: BatchOutcome,
    now: float,
) -> tuple[list[NumberedFan], list[BadRecord]]:
    by_sale: dict[str, list[FanJoin]] = {}
    for join in joins:
        by_sale.setdefault(join.sale_id, []).append(join)
    numbered_at = Decimal(f"{now:.3f}")
    candidates: list[NumberedFan] = []
    unknown_sale: list[BadRecord] = []
    for sale_id, sale_joins in by_sale.items():
        try:
            numbers = allocate_numbers(
                clients.dynamodb, config.sales_table, sale_id, len(sale_joins)
            )
        except SaleNotFoundError:
            unknown_sale.extend(_unknown_sale(join) for join in sale_joins)
            continue
        except AWS_ERRORS as exc:
            for join in sale_joins:
                _log_retry(join, "take queue numbers", error_name(exc))
                outcome.fail(join.sequence_number)
            continue
        candidates.extend(
            NumberedFan(join, number, numbered_at)
            for join, number in zip(sale_joins, numbers, strict=True)
        )
    return _write_numbers(candidates, config, clients, outcome), unknown_sale


def _write_numbers(
    candidates: list[NumberedFan],
    config: ForwarderConfig,
    clients: AwsClients,
    outcome: BatchOutcome,
) -> list[NumberedFan]:
    # Real fans' items are written in batches of whole items, which costs the
    # table a tenth of what one conditional update per fan does. A synthetic
    # fan's item may be deleted by its probe at any moment, so it keeps the
    # conditional update, which never writes an item back.
    def write_one(fan: NumberedFan) -> str | None:
        try:
            written = write_number(clients.dynamodb, config.queue_table, fan)
        except AWS_ERRORS as exc:
            return error_name(exc)
        return None if written else "condition"

    def write_chunk(chunk: list[NumberedFan]) -> list[str | None]:
        failed = put_numbered_items(clients.dynamodb, config.queue_table, chunk)
        return [failed.get(index) for index in range(len(chunk))]

    if not candidates:
        return []
    real = [fan for fan in candidates if not fan.join.synthetic]
    synthetic = [fan for fan in candidates if fan.join.synthetic]
    chunks = [
        real[start : start + MAX_BATCH_WRITE_ITEMS]
        for start in range(0, len(real), MAX_BATCH_WRITE_ITEMS)
    ]
    with ThreadPoolExecutor(max_workers=WRITE_CONCURRENCY) as pool:
        chunk_results = list(pool.map(write_chunk, chunks))
        synthetic_results = list(pool.map(write_one, synthetic))
    candidates = [fan for chunk in chunks for fan in chunk] + synthetic
    results = [
        error for errors in chunk_results for error in errors
    ] + synthetic_results
    numbered: list[NumberedFan] = []
    for fan, error in zip(candidates, results, strict=True):
        if error is None:
            numbered.append(fan)
        elif error == "condition":
            # The fan left, or another delivery of this record got there
            # first and sends the message itself. The number stays unused.
            logger.info(
                "Skipped a fan that is gone or numbered already",
                extra=_join_keys(fan.join),
            )
            outcome.skipped += 1
        else:
            _log_retry(fan.join, "write the queue number", error)
            outcome.fail(fan.join.sequence_number)
    return numbered


def _send_work(
    fans: list[NumberedFan],
    config: ForwarderConfig,
    clients: AwsClients,
    outcome: BatchOutcome,
) -> None:
    ordered = sorted(fans, key=lambda fan: (fan.join.sale_id, fan.queue_number))
    failed = send_work_messages(clients.sqs, config.work_queue_url, ordered)
    for index, fan in enumerate(ordered):
        if index in failed:
            _log_retry(fan.join, "send the work message", failed[index])
            outcome.fail(fan.join.sequence_number)
        elif fan.resent:
            outcome.resent += 1
        else:
            outcome.forwarded += 1


def _dead_letter(
    bad_records: list[BadRecord],
    config: ForwarderConfig,
    clients: AwsClients,
    outcome: BatchOutcome,
) -> None:
    for bad in bad_records:
        logger.warning(
            "Dead-lettering a bad stream record: %s", bad.detail, extra=_bad_keys(bad)
        )
    # NOTE: a bad record delivered again is dead-lettered and counted again,
    # because the standard dead-letter queue does not deduplicate.
    failed = send_dead_letters(clients.sqs, config.dead_letter_queue_url, bad_records)
    for index, bad in enumerate(bad_records):
        if index in failed:
            logger.error(
                "Could not dead-letter a bad stream record (%s), so it is retried",
                failed[index],
                extra=_bad_keys(bad),
            )
            outcome.fail(bad.sequence_number)
        else:
            outcome.dead_lettered += 1


def _count(config: ForwarderConfig, clients: AwsClients, outcome: BatchOutcome) -> None:
    if not outcome.forwarded and not outcome.dead_lettered:
        return
    try:
        clients.dynamodb.update_item(
            TableName=config.sales_table,
            Key={schema.SALE_ID: {"S": schema.FORWARDER_STATS_KEY}},
            UpdateExpression="ADD #bad :bad, #forwarded :forwarded",
            ExpressionAttributeNames={
                "#bad": schema.BAD_RECORDS,
                "#forwarded": schema.FORWARDED,
            },
            ExpressionAttributeValues={
                ":bad": {"N": str(outcome.dead_lettered)},
                ":forwarded": {"N": str(outcome.forwarded)},
            },
        )
    except AWS_ERRORS as exc:
        # The counters feed dashboards only; retrying the records for them
        # would count the rest of the batch twice.
        logger.warning(
            "Could not update the forwarder's counters (%s)",
            error_name(exc),
            extra={
                "forwarded": outcome.forwarded,
                "bad_records": outcome.dead_lettered,
            },
        )


def _unknown_sale(join: FanJoin) -> BadRecord:
    return BadRecord(
        BadRecordReason.UNKNOWN_SALE,
        f"Sale {join.sale_id!r} has no item in the sales table.",
        join.record,
        event_id=join.event_id,
        sequence_number=join.sequence_number,
        keys={schema.FAN_ID: {"S": join.fan_id}},
        fan_id=join.fan_id,
        sale_id=join.sale_id,
    )


def _log_retry(join: FanJoin, action: str, error: str) -> None:
    logger.error(
        "Could not %s (%s), so the record is reported for retry",
        action,
        error,
        extra=_join_keys(join),
    )


def _join_keys(join: FanJoin) -> dict[str, object]:
    return {
        "event_id": join.event_id,
        "sequence_number": join.sequence_number,
        "fan_id": join.fan_id,
        "sale_id": join.sale_id,
    }


def _bad_keys(bad: BadRecord) -> dict[str, object]:
    keys = json.dumps(bad.keys, default=str)
    if len(keys) > MAX_LOGGED_KEYS_CHARS:
        keys = keys[:MAX_LOGGED_KEYS_CHARS] + "..."
    return {
        "reason": str(bad.reason),
        "event_id": bad.event_id,
        "sequence_number": bad.sequence_number,
        "keys": keys,
        "fan_id": bad.fan_id,
        "sale_id": bad.sale_id,
    }
