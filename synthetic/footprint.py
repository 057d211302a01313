"""What a probe wrote to the stack, and how to remove it again.

A probe's fan leaves up to three records: its queue item, the window it was
admitted to and its dry-run order. The cleanup removes each one that exists,
whatever stage the probe reached. Every delete is conditional on the record
being synthetic, so a cleanup can never remove a real fan's item or order.

A fan that was numbered but never admitted still has a work message on the
queue. Deleting its item at once would make the window processor retry that
message until the queue moves it to the dead-letter queue. So the cleanup
first closes the item (status ``expired``), which makes the processor drop
the message, and deletes it once the line has moved past its number.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from synthetic.errors import NotSyntheticError
from system import schema
from system.stack import StackResources

logger = logging.getLogger(__name__)

# The freed_reason the cleanup writes on a window it frees.
FREED_BY_CLEANUP = "synthetic_cleanup"
# The queue table's TimeToLiveSpecification attribute (system/template.yaml).
# A closed item that no later probe deletes is removed by DynamoDB after this.
TTL_ATTRIBUTE = "ttl"
CLOSED_ITEM_TTL_SECONDS = 24 * 3600
# Reads and conditional writes race the funnel; one retry per race is plenty.
MAX_CLEANUP_PASSES = 3
_AWS_ERRORS = (BotoCoreError, ClientError, NotSyntheticError)


@dataclass
class Footprint:
    """The ids of what one probe wrote or caused to be written."""

    sale_id: str
    fan_id: str | None = None
    window_id: str | None = None
    token_id: str | None = None  # the purchase token's id, also the order id
    order_id: str | None = None


@dataclass(frozen=True)
class ClosedFan:
    """A synthetic fan closed while its work message was still queued."""

    fan_id: str
    sale_id: str
    queue_number: int


class Cleaner:
    """Remove probes' records; keep closed fans until their message is gone.

    ``dynamodb`` is a low-level client with the operator's credentials. The
    cleaner is shared by the runs of one probe and is thread-safe.
    """

    def __init__(self, dynamodb: Any, resources: StackResources) -> None:
        self._dynamodb = dynamodb
        self._resources = resources
        self._closed: list[ClosedFan] = []
        self._lock = threading.Lock()

    @property
    def closed(self) -> list[ClosedFan]:
        """Closed fans whose items are not deleted yet."""
        with self._lock:
            return list(self._closed)

    def clean_up(self, footprint: Footprint) -> list[str]:
        """Free the probe's window, delete its order and its item; return errors.

        Each step runs even when an earlier one failed.
        """
        item = self._read_fan(footprint)
        _learn_from_item(footprint, item)
        errors = []
        for name, step in (
            ("free window", self._free_window),
            ("delete order", self._delete_order),
            ("remove fan item", self._remove_fan),
        ):
            try:
                step(footprint)
            except _AWS_ERRORS as exc:
                logger.warning("Probe cleanup could not %s: %s", name, exc)
                errors.append(f"could not {name}: {exc}")
        return errors

    def sweep(self) -> list[str]:
        """Delete closed fans whose sale has served a later number; return errors."""
        errors = []
        for closed in self.closed:
            try:
                if self._served_past(closed):
                    self._delete_synthetic(
                        self._resources.queue_table, schema.FAN_ID, closed.fan_id
                    )
                    with self._lock:
                        self._closed.remove(closed)
            except _AWS_ERRORS as exc:
                errors.append(f"could not delete closed fan {closed.fan_id}: {exc}")
        return errors

    def leftovers(self, footprint: Footprint) -> list[str]:
        """Return a description of each of the probe's records still on the stack."""
        found = []
        if footprint.fan_id and self._read_fan(footprint):
            found.append(f"fan item {footprint.fan_id}")
        order_id = footprint.order_id or footprint.token_id
        if order_id and self._get(
            self._resources.orders_table, {schema.ORDER_ID: {"S": order_id}}
        ):
            found.append(f"order {order_id}")
        if self.window_held(footprint):
            found.append(f"window {footprint.window_id} still held")
        return found

    def window_held(self, footprint: Footprint) -> bool:
        """Return whether the window is still busy with the probe's token."""
        if not (footprint.window_id and footprint.token_id):
            return False
        window = self._get(self._resources.windows_table, _window_key(footprint))
        return bool(window.get(schema.TOKEN_ID, {}).get("S") == footprint.token_id)

    def _remove_fan(self, footprint: Footprint) -> None:
        for _ in range(MAX_CLEANUP_PASSES):
            item = self._read_fan(footprint)
            if not item:
                return
            status = item.get(schema.STATUS, {}).get("S")
            number = item.get(schema.QUEUE_NUMBER, {}).get("N")
            try:
                if status == schema.WAITING and number is not None:
                    self._close(footprint, int(number))
                elif number is None:
                    self._delete_synthetic(
                        self._resources.queue_table,
                        schema.FAN_ID,
                        str(footprint.fan_id),
                        unless_numbered=True,
                    )
                else:
                    self._delete_synthetic(
                        self._resources.queue_table,
                        schema.FAN_ID,
                        str(footprint.fan_id),
                    )
                return
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise
                # The forwarder or a window moved the fan on; look again.
        raise NotSyntheticError(
            f"Fan {footprint.fan_id} kept changing during {MAX_CLEANUP_PASSES} "
            "cleanup passes; it was left in place."
        )

    def _close(self, footprint: Footprint, number: int) -> None:
        now = time.time()
        self._dynamodb.update_item(
            TableName=self._resources.queue_table,
            Key={schema.FAN_ID: {"S": str(footprint.fan_id)}},
            UpdateExpression="SET #status = :expired, #finished = :now, #ttl = :ttl",
            ConditionExpression=(
                "#status = :waiting AND #number = :number AND #synthetic = :true"
            ),
            ExpressionAttributeNames={
                "#status": schema.STATUS,
                "#finished": schema.FINISHED_AT,
                "#ttl": TTL_ATTRIBUTE,
                "#number": schema.QUEUE_NUMBER,
                "#synthetic": schema.SYNTHETIC,
            },
            ExpressionAttributeValues={
                ":expired": {"S": schema.EXPIRED},
                ":waiting": {"S": schema.WAITING},
                ":number": {"N": str(number)},
                ":true": {"BOOL": True},
                ":now": {"N": _epoch(now)},
                ":ttl": {"N": str(int(now + CLOSED_ITEM_TTL_SECONDS))},
            },
        )
        with self._lock:
            self._closed.append(
                ClosedFan(str(footprint.fan_id), footprint.sale_id, number)
            )
        logger.info(
            "Closed synthetic fan %s (number %d); its item goes once the line "
            "moves past it",
            footprint.fan_id,
            number,
        )

    def _served_past(self, closed: ClosedFan) -> bool:
        fan = self._get(
            self._resources.queue_table, {schema.FAN_ID: {"S": closed.fan_id}}
        )
        if not fan:
            return True
        sale = self._get(
            self._resources.sales_table, {schema.SALE_ID: {"S": closed.sale_id}}
        )
        serving = int(sale.get(schema.SERVING, {}).get("N", "0"))
        # The line is FIFO, so a fan admitted after this one means the
        # processor has taken, and dropped, this fan's message.
        return serving > closed.queue_number

    def _free_window(self, footprint: Footprint) -> None:
        if not (footprint.window_id and footprint.token_id):
            return
        removed = {f"#{name}": name for name in schema.WINDOW_SESSION_ATTRIBUTES}
        try:
            self._dynamodb.update_item(
                TableName=self._resources.windows_table,
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
                    ":now": {"N": _epoch(time.time())},
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

    def _delete_order(self, footprint: Footprint) -> None:
        order_id = footprint.order_id or footprint.token_id
        if order_id:
            self._delete_synthetic(
                self._resources.orders_table, schema.ORDER_ID, order_id
            )

    def _delete_synthetic(
        self, table: str, key_name: str, key: str, *, unless_numbered: bool = False
    ) -> None:
        condition = "attribute_not_exists(#key) OR #synthetic = :true"
        names = {"#key": key_name, "#synthetic": schema.SYNTHETIC}
        if unless_numbered:
            condition = f"({condition}) AND attribute_not_exists(#number)"
            names["#number"] = schema.QUEUE_NUMBER
        try:
            self._dynamodb.delete_item(
                TableName=table,
                Key={key_name: {"S": key}},
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException" or unless_numbered:
                raise
            raise NotSyntheticError(
                f"The item with {key_name} {key!r} in {table} is not synthetic, "
                "so it was left in place."
            ) from exc

    def _read_fan(self, footprint: Footprint) -> dict[str, Any]:
        if not footprint.fan_id:
            return {}
        return self._get(
            self._resources.queue_table, {schema.FAN_ID: {"S": footprint.fan_id}}
        )

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        response = self._dynamodb.get_item(
            TableName=table, Key=key, ConsistentRead=True
        )
        item: dict[str, Any] = response.get("Item", {})
        return item


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


def _learn_from_item(footprint: Footprint, item: dict[str, Any]) -> None:
    # A window may have admitted the fan after the probe stopped polling.
    window_id = item.get(schema.WINDOW_ID, {}).get("S")
    url = item.get(schema.PURCHASE_URL, {}).get("S")
    if window_id and url and not footprint.token_id:
        tokens = parse_qs(urlsplit(url).query).get("token")
        footprint.window_id = window_id
        footprint.token_id = token_id_of(tokens[0]) if tokens else None


def _window_key(footprint: Footprint) -> dict[str, Any]:
    return {
        schema.SALE_ID: {"S": footprint.sale_id},
        schema.WINDOW_ID: {"S": str(footprint.window_id)},
    }


def _epoch(seconds: float) -> str:
    return str(Decimal(str(round(seconds, 3))))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
