"""A snapshot of the funnel's state, read from the stack's tables and queues."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from system import schema
from system.clients import make_client
from system.settings import Settings
from system.stack import StackResources


@dataclass(frozen=True)
class FunnelSnapshot:
    """Counts that say how a sale's line is doing at one moment."""

    sale_id: str
    numbered: int  # fans given a queue number
    serving: int  # highest queue number admitted
    fans_waiting: int
    admitted: int
    admission_rate: float  # fans per second
    work_queue_depth: int
    oldest_message_age_seconds: float
    dead_letter_depth: int
    work_dead_letter_depth: int
    windows_in_use: int
    window_count: int
    stock: int
    tickets_left: int
    sold_out: bool
    forwarder_bad_records: int
    forwarded: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_snapshot(
    settings: Settings, resources: StackResources, sale_id: str
) -> FunnelSnapshot:
    """Read the sale's counters, the queues' depths and the forwarder's counts."""
    dynamodb = make_client(settings, "dynamodb")
    sqs = make_client(settings, "sqs")
    sale = _get(dynamodb, resources.sales_table, {schema.SALE_ID: {"S": sale_id}})
    stats = _get(
        dynamodb,
        resources.sales_table,
        {schema.SALE_ID: {"S": schema.FORWARDER_STATS_KEY}},
    )
    numbered = _number(sale, schema.NEXT_NUMBER)
    serving = _number(sale, schema.SERVING)
    head = _number(sale, schema.HEAD_NUMBERED_AT)
    sold_out = bool(sale.get(schema.SOLD_OUT_FLAG, {}).get("BOOL", False))
    return FunnelSnapshot(
        sale_id=sale_id,
        numbered=int(numbered),
        serving=int(serving),
        fans_waiting=0 if sold_out else max(int(numbered - serving), 0),
        admitted=int(_number(sale, schema.ADMITTED_COUNT)),
        admission_rate=_number(sale, schema.ADMISSION_RATE),
        work_queue_depth=queue_depth(sqs, resources.work_queue_url),
        oldest_message_age_seconds=max(time.time() - head, 0.0) if head else 0.0,
        dead_letter_depth=queue_depth(sqs, resources.dead_letter_queue_url),
        work_dead_letter_depth=queue_depth(sqs, resources.work_dead_letter_queue_url),
        windows_in_use=int(_number(sale, schema.WINDOWS_IN_USE)),
        window_count=int(_number(sale, schema.WINDOW_COUNT)),
        stock=int(_number(sale, schema.STOCK)),
        tickets_left=int(_number(sale, schema.TICKETS_LEFT)),
        sold_out=sold_out,
        forwarder_bad_records=int(_number(stats, schema.BAD_RECORDS)),
        forwarded=int(_number(stats, schema.FORWARDED)),
    )


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Return the messages visible plus in flight on an SQS queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def _get(dynamodb: Any, table: str, key: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.get_item(
        TableName=table, Key=key, ConsistentRead=True
    ).get("Item", {})
    return item


def _number(item: dict[str, Any], name: str) -> float:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else 0.0
