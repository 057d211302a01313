"""Pump mode: put a synthetic fan into the funnel past its first stages.

These writes use the operator's credentials, not a fan's, and test one
stage alone: ``forward`` skips Cognito and the fan's role, ``admission``
skips the join and the forwarder's checks by numbering the fan here and
sending its work message straight to the queue.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal
from typing import Any

from system import schema
from system.errors import SaleNotFoundError
from system.stack import StackResources


def new_fan_id(region: str) -> str:
    """Return a fan id shaped like a Cognito identity id, for an injected fan."""
    return f"{region}:{uuid.uuid4()}"


def write_join_item(
    dynamodb: Any, resources: StackResources, sale_id: str, fan_id: str
) -> None:
    """Write a synthetic fan's join item as a browser would, with operator keys."""
    dynamodb.put_item(
        TableName=resources.queue_table,
        Item=_join_item(sale_id, fan_id),
        ConditionExpression=f"attribute_not_exists({schema.FAN_ID})",
    )


def send_work_message(
    dynamodb: Any, sqs: Any, resources: StackResources, sale_id: str, fan_id: str
) -> int:
    """Number a synthetic fan and send its work message; return its number.

    The number comes from the sale's counter, as the forwarder takes it, so
    the fan lines up behind everyone numbered before it.
    """
    number = _take_number(dynamodb, resources, sale_id)
    numbered_at = round(time.time(), 3)
    item = _join_item(sale_id, fan_id)
    item[schema.QUEUE_NUMBER] = {"N": str(number)}
    item[schema.STATUS] = {"S": schema.WAITING}
    item[schema.NUMBERED_AT] = {"N": str(Decimal(str(numbered_at)))}
    dynamodb.put_item(
        TableName=resources.queue_table,
        Item=item,
        ConditionExpression=f"attribute_not_exists({schema.FAN_ID})",
    )
    body = {
        schema.FAN_ID: fan_id,
        schema.SALE_ID: sale_id,
        schema.QUEUE_NUMBER: number,
        schema.SYNTHETIC: True,
        schema.NUMBERED_AT: numbered_at,
    }
    sqs.send_message(
        QueueUrl=resources.work_queue_url,
        MessageBody=json.dumps(body),
        MessageGroupId=sale_id,
        MessageDeduplicationId=f"{sale_id}:{number}",
    )
    return number


def _take_number(dynamodb: Any, resources: StackResources, sale_id: str) -> int:
    try:
        response = dynamodb.update_item(
            TableName=resources.sales_table,
            Key={schema.SALE_ID: {"S": sale_id}},
            UpdateExpression="ADD #next :one",
            ConditionExpression="attribute_exists(#sale)",
            ExpressionAttributeNames={
                "#next": schema.NEXT_NUMBER,
                "#sale": schema.SALE_ID,
            },
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException as exc:
        raise SaleNotFoundError(
            f"Sale {sale_id!r} is not configured on this stack; create it first."
        ) from exc
    return int(response["Attributes"][schema.NEXT_NUMBER]["N"])


def _join_item(sale_id: str, fan_id: str) -> dict[str, Any]:
    return {
        schema.FAN_ID: {"S": fan_id},
        schema.SALE_ID: {"S": sale_id},
        schema.CLIENT_TIME: {"N": str(int(time.time() * 1000))},
        schema.SYNTHETIC: {"BOOL": True},
    }
