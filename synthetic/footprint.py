"""What a probe wrote to the stack, and how to remove it again.

A probe's fan leaves up to three records: its queue item, the window it was
admitted to and its dry-run order. The cleanup removes each one that exists,
whatever stage the probe reached. Every delete is conditional on the record
being synthetic, so a cleanup can never remove a real fan's item or order.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from synthetic.errors import NotSyntheticError
from system import schema
from system.stack import StackResources

logger = logging.getLogger(__name__)

# Why the window was freed, as the windows table records it.
FREED_BY_CLEANUP = "synthetic_cleanup"


@dataclass
class Footprint:
    """The ids of what one probe wrote or caused to be written."""

    sale_id: str
    fan_id: str | None = None
    window_id: str | None = None
    token_id: str | None = None  # the purchase token's id, also the order id
    order_id: str | None = None


def clean_up(
    dynamodb: Any, resources: StackResources, footprint: Footprint
) -> list[str]:
    """Free the probe's window, delete its order and its item; return errors.

    ``dynamodb`` is a low-level client with the operator's credentials. Each
    step runs even when an earlier one failed.
    """
    steps = (
        ("free window", _free_window),
        ("delete order", _delete_order),
        ("delete fan item", _delete_fan),
    )
    errors = []
    for name, step in steps:
        try:
            step(dynamodb, resources, footprint)
        except (BotoCoreError, ClientError, NotSyntheticError) as exc:
            logger.warning("Probe cleanup could not %s: %s", name, exc)
            errors.append(f"could not {name}: {exc}")
    return errors


def leftovers(
    dynamodb: Any, resources: StackResources, footprint: Footprint
) -> list[str]:
    """Return a description of each probe record still on the stack."""
    found = []
    if footprint.fan_id and _exists(
        dynamodb, resources.queue_table, {schema.FAN_ID: footprint.fan_id}
    ):
        found.append(f"fan item {footprint.fan_id}")
    order_id = footprint.order_id or footprint.token_id
    if order_id and _exists(
        dynamodb, resources.orders_table, {schema.ORDER_ID: order_id}
    ):
        found.append(f"order {order_id}")
    if footprint.window_id and footprint.token_id:
        window = dynamodb.get_item(
            TableName=resources.windows_table,
            Key=_window_key(footprint),
            ConsistentRead=True,
        ).get("Item", {})
        if window.get(schema.TOKEN_ID, {}).get("S") == footprint.token_id:
            found.append(f"window {footprint.window_id} still held")
    return found


def token_id_of(token: str) -> str | None:
    """Read the id (jti) from a purchase token without checking its signature.

    The probe has no signing secret. It needs the id only to find the order
    and the window that the token opened, and the ticketing service checks
    the signature before it writes either.
    """
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError, binascii.Error):
        return None
    token_id = claims.get("jti") if isinstance(claims, dict) else None
    return str(token_id) if token_id else None


def _free_window(
    dynamodb: Any, resources: StackResources, footprint: Footprint
) -> None:
    if not (footprint.window_id and footprint.token_id):
        return
    removed = {f"#{name}": name for name in schema.WINDOW_SESSION_ATTRIBUTES}
    try:
        dynamodb.update_item(
            TableName=resources.windows_table,
            Key=_window_key(footprint),
            UpdateExpression=(
                "SET #status = :free, #freed_at = :now, #freed_reason = :reason "
                f"REMOVE {', '.join(removed)}"
            ),
            ConditionExpression="#status = :busy AND #token_id = :token",
            ExpressionAttributeNames={
                **removed,
                "#status": schema.WINDOW_STATUS,
                "#freed_at": schema.FREED_AT,
                "#freed_reason": schema.FREED_REASON,
            },
            ExpressionAttributeValues={
                ":free": {"S": schema.WINDOW_FREE},
                ":busy": {"S": schema.WINDOW_BUSY},
                ":token": {"S": footprint.token_id},
                ":now": {"N": str(Decimal(str(round(time.time(), 3))))},
                ":reason": {"S": FREED_BY_CLEANUP},
            },
        )
    except ClientError as exc:
        if _code(exc) != "ConditionalCheckFailedException":
            raise
        return  # the ticketing service or the processor freed it already
    logger.info(
        "Freed window %s of sale %s held by a probe",
        footprint.window_id,
        footprint.sale_id,
    )


def _delete_order(
    dynamodb: Any, resources: StackResources, footprint: Footprint
) -> None:
    order_id = footprint.order_id or footprint.token_id
    if order_id:
        _delete_synthetic(dynamodb, resources.orders_table, schema.ORDER_ID, order_id)


def _delete_fan(dynamodb: Any, resources: StackResources, footprint: Footprint) -> None:
    if footprint.fan_id:
        _delete_synthetic(
            dynamodb, resources.queue_table, schema.FAN_ID, footprint.fan_id
        )


def _delete_synthetic(dynamodb: Any, table: str, key_name: str, key: str) -> None:
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={key_name: {"S": key}},
            ConditionExpression="attribute_not_exists(#key) OR #synthetic = :true",
            ExpressionAttributeNames={"#key": key_name, "#synthetic": schema.SYNTHETIC},
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )
    except ClientError as exc:
        if _code(exc) == "ConditionalCheckFailedException":
            raise NotSyntheticError(
                f"The item with {key_name} {key!r} in {table} is not synthetic, "
                "so it was left in place."
            ) from exc
        raise


def _exists(dynamodb: Any, table: str, key: dict[str, str]) -> bool:
    response = dynamodb.get_item(
        TableName=table,
        Key={name: {"S": value} for name, value in key.items()},
        ConsistentRead=True,
    )
    return "Item" in response


def _window_key(footprint: Footprint) -> dict[str, Any]:
    return {
        schema.SALE_ID: {"S": footprint.sale_id},
        schema.WINDOW_ID: {"S": str(footprint.window_id)},
    }


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
