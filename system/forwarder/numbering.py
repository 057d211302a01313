"""Queue numbers: the redelivery check, the sale's counter and the fan's item.

``dynamodb`` is a boto3 DynamoDB client throughout. Errors from it are raised
to the caller, except the conditional-check failures that carry a meaning
here (unknown sale, fan already numbered or gone).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from system import schema
from system.errors import SaleNotFoundError
from system.forwarder.records import FanJoin

# BatchGetItem reads at most 100 keys per request and may return some of them
# unprocessed when throttled; those are asked for again with a backoff.
MAX_BATCH_GET_KEYS = 100
BATCH_GET_ATTEMPTS = 4
BATCH_GET_BACKOFF_SECONDS = 0.05
# SQS FIFO drops a message whose deduplication id it accepted in the last five
# minutes, so within this window a resent work message can never be a copy.
# The margin covers clock skew between Lambda hosts.
RESEND_WINDOW_SECONDS = 240
CONDITION_FAILED = "ConditionalCheckFailedException"
# BatchWriteItem takes at most 25 puts per request and may hand some back as
# unprocessed when throttled; those are sent again with a backoff.
MAX_BATCH_WRITE_ITEMS = 25
BATCH_WRITE_ATTEMPTS = 4
BATCH_WRITE_BACKOFF_SECONDS = 0.05

# The numbering write sets these and removes every other server-owned
# attribute, so nothing a client wrote into them survives.
_SET_ATTRIBUTES = (
    schema.QUEUE_NUMBER,
    schema.STATUS,
    schema.NUMBERED_AT,
    schema.STREAM_SEQUENCE,
)
_REMOVE_ATTRIBUTES = tuple(
    name for name in schema.SERVER_ATTRIBUTES if name not in _SET_ATTRIBUTES
)


@dataclass(frozen=True)
class FanState:
    """The server-owned attributes of a fan's item, read before numbering."""

    stream_sequence: str | None
    status: str | None
    queue_number: int | None
    numbered_at: Decimal | None

    def numbered_by(self, join: FanJoin) -> bool:
        """Return whether this very stream record numbered the fan already."""
        return self.stream_sequence == join.sequence_number

    def pending_message(self, join: FanJoin, now: float) -> NumberedFan | None:
        """Return the fan to send again when its work message may be missing.

        A fan still waiting and numbered by this record within
        ``RESEND_WINDOW_SECONDS`` may have been numbered by an invocation that
        failed before its message went out. Resending it with the same
        deduplication id is safe then, because SQS drops the copy.
        """
        if (
            not self.numbered_by(join)
            or self.status != schema.WAITING
            or self.queue_number is None
            or self.numbered_at is None
            or now - float(self.numbered_at) >= RESEND_WINDOW_SECONDS
        ):
            return None
        return NumberedFan(join, self.queue_number, self.numbered_at, resent=True)


@dataclass(frozen=True)
class NumberedFan:
    """A fan with its queue number, ready for its work message."""

    join: FanJoin
    queue_number: int
    numbered_at: Decimal  # epoch seconds
    resent: bool = False  # numbered by an earlier delivery of the same record


@dataclass
class FanStates:
    """Result of the redelivery check: the items found and the fans not read."""

    found: dict[str, FanState]
    unread: dict[str, str]  # fan id -> why it could not be read


def read_fan_states(
    dynamodb: Any, queue_table: str, fan_ids: Iterable[str]
) -> FanStates:
    """Read the fans' items with strongly consistent BatchGetItem requests.

    A fan with no item is in neither ``found`` nor ``unread``. A request that
    fails puts its fans in ``unread`` with the error code.
    """
    states = FanStates(found={}, unread={})
    unique = sorted(set(fan_ids))
    for start in range(0, len(unique), MAX_BATCH_GET_KEYS):
        chunk = unique[start : start + MAX_BATCH_GET_KEYS]
        try:
            _read_chunk(dynamodb, queue_table, chunk, states)
        except (ClientError, BotoCoreError) as exc:
            for fan_id in chunk:
                states.unread.setdefault(fan_id, error_name(exc))
    return states


def allocate_numbers(
    dynamodb: Any, sales_table: str, sale_id: str, count: int
) -> range:
    """Take ``count`` queue numbers from the sale's counter in one update.

    Raises ``SaleNotFoundError`` when the sales table has no item for the sale.
    """
    # NOTE: a join written before the sale's on_sale_at is numbered like any
    # other, so a script that joins early gets a low number. The pages only
    # join when the countdown ends, by the fan's own clock.
    try:
        response = dynamodb.update_item(
            TableName=sales_table,
            Key={schema.SALE_ID: {"S": sale_id}},
            UpdateExpression="ADD #next :count",
            ConditionExpression="attribute_exists(#sale)",
            ExpressionAttributeNames={
                "#next": schema.NEXT_NUMBER,
                "#sale": schema.SALE_ID,
            },
            ExpressionAttributeValues={":count": {"N": str(count)}},
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as exc:
        if error_name(exc) == CONDITION_FAILED:
            raise SaleNotFoundError(
                f"Sale {sale_id!r} has no item in table {sales_table!r}."
            ) from exc
        raise
    last = int(response["Attributes"][schema.NEXT_NUMBER]["N"])
    return range(last - count + 1, last + 1)


def put_numbered_items(
    dynamodb: Any, queue_table: str, fans: list[NumberedFan]
) -> dict[int, str]:
    """Write up to 25 numbered fans' items with one BatchWriteItem.

    Each item is written whole: the browser's validated attributes and the
    forwarder's, so nothing else a client wrote survives. Returns the
    positions in ``fans`` that were not written, with the error's name.

    A put has no condition, so the caller must have read, consistently and
    in this invocation, that each fan's item exists and that this stream
    record has not numbered it. Only the forwarder writes a real fan's item
    between its join and its work message, so that read still holds.
    """
    if len(fans) > MAX_BATCH_WRITE_ITEMS:
        raise ValueError(f"{len(fans)} items exceed BatchWriteItem's limit of 25.")
    by_fan = {fan.join.fan_id: index for index, fan in enumerate(fans)}
    requests = [{"PutRequest": {"Item": _numbered_item(fan)}} for fan in fans]
    for attempt in range(BATCH_WRITE_ATTEMPTS):
        if attempt:
            time.sleep(BATCH_WRITE_BACKOFF_SECONDS * 2**attempt)
        try:
            response = dynamodb.batch_write_item(RequestItems={queue_table: requests})
        except (ClientError, BotoCoreError) as exc:
            return {index: error_name(exc) for index in by_fan.values()}
        requests = (response.get("UnprocessedItems") or {}).get(queue_table, [])
        if not requests:
            return {}
    return {
        by_fan[request["PutRequest"]["Item"][schema.FAN_ID]["S"]]: "UnprocessedItems"
        for request in requests
    }


def _numbered_item(fan: NumberedFan) -> dict[str, Any]:
    join = fan.join
    return {
        schema.FAN_ID: {"S": join.fan_id},
        schema.SALE_ID: {"S": join.sale_id},
        schema.CLIENT_TIME: {"N": str(join.client_time)},
        schema.SYNTHETIC: {"BOOL": join.synthetic},
        schema.QUEUE_NUMBER: {"N": str(fan.queue_number)},
        schema.STATUS: {"S": schema.WAITING},
        schema.NUMBERED_AT: {"N": str(fan.numbered_at)},
        schema.STREAM_SEQUENCE: {"S": join.sequence_number},
    }


def write_number(dynamodb: Any, queue_table: str, fan: NumberedFan) -> bool:
    """Write the fan's queue number and reset the server-owned attributes.

    Returns ``False`` when the item is gone or this stream record numbered it
    already (the condition failed), ``True`` when the number was written.
    """
    names = {f"#s{index}": name for index, name in enumerate(_SET_ATTRIBUTES)}
    names.update({f"#r{index}": name for index, name in enumerate(_REMOVE_ATTRIBUTES)})
    names["#fan"] = schema.FAN_ID
    update = "SET #s0 = :number, #s1 = :status, #s2 = :at, #s3 = :seq REMOVE " + (
        ", ".join(f"#r{index}" for index in range(len(_REMOVE_ATTRIBUTES)))
    )
    try:
        dynamodb.update_item(
            TableName=queue_table,
            Key={schema.FAN_ID: {"S": fan.join.fan_id}},
            UpdateExpression=update,
            ConditionExpression=(
                "attribute_exists(#fan) AND (attribute_not_exists(#s3) OR #s3 <> :seq)"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":number": {"N": str(fan.queue_number)},
                ":status": {"S": schema.WAITING},
                ":at": {"N": str(fan.numbered_at)},
                ":seq": {"S": fan.join.sequence_number},
            },
        )
    except ClientError as exc:
        if error_name(exc) == CONDITION_FAILED:
            return False
        raise
    return True


def _read_chunk(
    dynamodb: Any, queue_table: str, fan_ids: list[str], states: FanStates
) -> None:
    request: dict[str, Any] = {
        queue_table: {
            "Keys": [{schema.FAN_ID: {"S": fan_id}} for fan_id in fan_ids],
            "ConsistentRead": True,
            "ProjectionExpression": "#fan, #seq, #status, #number, #at",
            "ExpressionAttributeNames": {
                "#fan": schema.FAN_ID,
                "#seq": schema.STREAM_SEQUENCE,
                "#status": schema.STATUS,
                "#number": schema.QUEUE_NUMBER,
                "#at": schema.NUMBERED_AT,
            },
        }
    }
    for attempt in range(BATCH_GET_ATTEMPTS):
        if attempt:
            time.sleep(BATCH_GET_BACKOFF_SECONDS * 2**attempt)
        response = dynamodb.batch_get_item(RequestItems=request)
        for item in response.get("Responses", {}).get(queue_table, []):
            states.found[item[schema.FAN_ID]["S"]] = _fan_state(item)
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return
    for key in request.get(queue_table, {}).get("Keys", []):
        states.unread[key[schema.FAN_ID]["S"]] = "UnprocessedKeys"


def _fan_state(item: dict[str, Any]) -> FanState:
    def string(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return value if isinstance(value, str) else None

    def number(name: str) -> Decimal | None:
        value = item.get(name, {}).get("N")
        return Decimal(value) if isinstance(value, str) else None

    queue_number = number(schema.QUEUE_NUMBER)
    return FanState(
        stream_sequence=string(schema.STREAM_SEQUENCE),
        status=string(schema.STATUS),
        queue_number=int(queue_number) if queue_number is not None else None,
        numbered_at=number(schema.NUMBERED_AT),
    )


def error_name(exc: Exception) -> str:
    """Return an AWS error's code, or the exception's class name for others."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    return type(exc).__name__
