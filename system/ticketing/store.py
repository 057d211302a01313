"""The ticketing service's reads and transactions on the stack's tables.

Every write that sells, frees a window or closes a fan's session is one
DynamoDB transaction, and its conditions enforce the rules. The window must
be busy with this token and the fan admitted to that window. No order may
exist for the token yet, and the stock must cover the order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.config import Config
from botocore.exceptions import ClientError

from system import schema
from system.clients import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    RETRY_ATTEMPTS,
    make_session,
)
from system.settings import Settings
from system.stack import StackResources
from system.tokens import PurchaseClaims

logger = logging.getLogger(__name__)

# The purchase page and the load tests send bursts of concurrent requests;
# boto3's default pool of 10 connections would queue them.
MAX_POOL_CONNECTIONS = 64

# Parts of a transaction, as reported by ``write_purchase`` and friends.
ORDER = "order"
WINDOW = "window"
FAN = "fan"
SALE = "sale"

# CancellationReasons codes of a transaction that may succeed when retried.
_RETRYABLE_CODES = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


class TransactionConflictError(Exception):
    """A transaction was cancelled by a concurrent write; it may be retried."""


@dataclass(frozen=True)
class OrderRecord:
    """An order as the orders table stores it."""

    order_id: str
    fan_id: str
    sale_id: str
    window_id: str
    quantity: int
    synthetic: bool
    dry_run: bool
    idempotency_key: str | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> OrderRecord:
        key = item.get(schema.IDEMPOTENCY_KEY)
        return cls(
            order_id=str(item[schema.ORDER_ID]),
            fan_id=str(item[schema.FAN_ID]),
            sale_id=str(item[schema.SALE_ID]),
            window_id=str(item[schema.WINDOW_ID]),
            quantity=int(item[schema.QUANTITY]),
            synthetic=bool(item.get(schema.SYNTHETIC, False)),
            dry_run=bool(item.get(schema.DRY_RUN, False)),
            idempotency_key=str(key) if key is not None else None,
        )


@dataclass(frozen=True)
class OrderTotals:
    """Order counts of one sale, from the orders table."""

    sale_id: str
    orders: int  # orders of real fans
    tickets_sold: int  # tickets in those orders
    synthetic_orders: int


class TicketingTables:
    """The sales, windows, queue and orders tables, as the service uses them."""

    def __init__(self, dynamodb: Any, resources: StackResources) -> None:
        self._client = dynamodb.meta.client
        self._sales = dynamodb.Table(resources.sales_table)
        self._orders = dynamodb.Table(resources.orders_table)
        self._names = {
            SALE: resources.sales_table,
            WINDOW: resources.windows_table,
            FAN: resources.queue_table,
            ORDER: resources.orders_table,
        }

    @classmethod
    def connect(cls, settings: Settings, resources: StackResources) -> TicketingTables:
        """Build the tables on one DynamoDB resource from the settings."""
        config = Config(
            retries={"max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        dynamodb = make_session(settings).resource(
            "dynamodb", endpoint_url=settings.endpoint_url, config=config
        )
        return cls(dynamodb, resources)

    def get_sale(self, sale_id: str) -> dict[str, Any] | None:
        """Return the sale's item, strongly consistent, or ``None``."""
        item = self._sales.get_item(
            Key={schema.SALE_ID: sale_id}, ConsistentRead=True
        ).get("Item")
        return dict(item) if item is not None else None

    def tickets_left(self, sale_id: str) -> int:
        """Return the sale's tickets left now, or 0 when the sale is gone."""
        sale = self.get_sale(sale_id)
        return int(sale.get(schema.TICKETS_LEFT, 0)) if sale else 0

    def get_order(self, order_id: str) -> OrderRecord | None:
        """Return the order with this id, strongly consistent, or ``None``."""
        item = self._orders.get_item(
            Key={schema.ORDER_ID: order_id}, ConsistentRead=True
        ).get("Item")
        return OrderRecord.from_item(item) if item is not None else None

    def write_purchase(
        self,
        claims: PurchaseClaims,
        quantity: int,
        idempotency_key: str | None,
        now: float,
    ) -> frozenset[str]:
        """Sell ``quantity`` tickets to the token's fan in one transaction.

        Takes the stock, records the order, frees the window and marks the
        fan purchased. Returns the parts whose condition failed (empty when it
        sold) and raises ``TransactionConflictError`` when a concurrent write
        cancelled it.
        """
        # The order goes first: should a store report only the first failed
        # condition, a used token still reads as a used token.
        items = [
            self._put_order(claims, quantity, idempotency_key, now, dry_run=False),
            self._free_window(claims, schema.FREED_BY_PURCHASE, now),
            self._close_fan(claims, schema.PURCHASED, now, order=True),
            self._take_stock(claims.sale_id, quantity),
        ]
        return self._transact(items, (ORDER, WINDOW, FAN, SALE))

    def write_dry_run(
        self,
        claims: PurchaseClaims,
        quantity: int,
        idempotency_key: str | None,
        now: float,
    ) -> frozenset[str]:
        """Record a synthetic fan's order without taking stock, like a sale."""
        items = [
            self._put_order(claims, quantity, idempotency_key, now, dry_run=True),
            self._free_window(claims, schema.FREED_BY_PURCHASE, now),
            self._close_fan(claims, schema.PURCHASED, now, order=True),
        ]
        return self._transact(items, (ORDER, WINDOW, FAN))

    def write_sold_out(self, claims: PurchaseClaims, now: float) -> frozenset[str]:
        """Free the token's window and mark its fan sold out, in one transaction."""
        items = [
            self._free_window(claims, schema.FREED_BY_SOLD_OUT, now),
            self._close_fan(claims, schema.SOLD_OUT, now, order=False),
        ]
        return self._transact(items, (WINDOW, FAN))

    def mark_sold_out(self, sale_id: str, now: float) -> bool:
        """Set the sale's sold-out flag if no ticket is left; return whether set."""
        try:
            self._sales.update_item(
                Key={schema.SALE_ID: sale_id},
                UpdateExpression="SET #sold_out = :true, #updated_at = :now",
                ConditionExpression="#tickets_left <= :zero",
                ExpressionAttributeNames={
                    "#sold_out": schema.SOLD_OUT_FLAG,
                    "#updated_at": schema.UPDATED_AT,
                    "#tickets_left": schema.TICKETS_LEFT,
                },
                ExpressionAttributeValues={
                    ":true": True,
                    ":now": _decimal(now),
                    ":zero": 0,
                },
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_window(self, claims: PurchaseClaims, now: float) -> float | None:
        """Mark the token's window claimed; return when it closes, or ``None``.

        ``None`` means the window is not busy with this token any more, or the
        fan first opened the purchase URL after the window's claim deadline.
        """
        try:
            response = self._client.update_item(
                TableName=self._names[WINDOW],
                Key=_window_key(claims),
                UpdateExpression="SET #claimed = :true, #claimed_at = :now",
                # A fan who claimed in time may reopen the page later.
                ConditionExpression=(
                    f"{_WINDOW_HELD} AND (#claimed = :true "
                    "OR attribute_not_exists(#claim_by) OR #claim_by >= :now)"
                ),
                ExpressionAttributeNames={
                    **_WINDOW_HELD_NAMES,
                    "#claimed": schema.CLAIMED,
                    "#claimed_at": schema.CLAIMED_AT,
                    "#claim_by": schema.CLAIM_BY,
                },
                ExpressionAttributeValues={
                    **_window_held_values(claims, now),
                    ":true": True,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        expires_at = response["Attributes"].get(schema.EXPIRES_AT)
        return float(expires_at) if expires_at is not None else claims.expires_at

    def order_totals(self, sale_id: str) -> OrderTotals:
        """Count the sale's orders and tickets with a paginated Scan."""
        orders = tickets = synthetic = 0
        for item in self._scan_orders(sale_id):
            if item.get(schema.SYNTHETIC):
                synthetic += 1
            else:
                orders += 1
                tickets += int(item.get(schema.QUANTITY, 0))
        return OrderTotals(sale_id, orders, tickets, synthetic)

    def _scan_orders(self, sale_id: str) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr(schema.SALE_ID).eq(sale_id),
            "ProjectionExpression": "#quantity, #synthetic",
            "ExpressionAttributeNames": {
                "#quantity": schema.QUANTITY,
                "#synthetic": schema.SYNTHETIC,
            },
            "ConsistentRead": True,
        }
        while True:
            page = self._orders.scan(**kwargs)
            yield from page.get("Items", [])
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return
            kwargs["ExclusiveStartKey"] = last_key

    def _transact(
        self, items: list[dict[str, Any]], parts: tuple[str, ...]
    ) -> frozenset[str]:
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons", [])
            codes = [str(reason.get("Code", "None")) for reason in reasons]
            failed = frozenset(
                part
                for part, code in zip(parts, codes, strict=False)
                if code == "ConditionalCheckFailed"
            )
            if not failed and any(code in _RETRYABLE_CODES for code in codes):
                raise TransactionConflictError(", ".join(codes)) from exc
            if not failed:
                # Without reasons there is nothing to act on: surface it.
                raise
            return failed
        return frozenset()

    def _put_order(
        self,
        claims: PurchaseClaims,
        quantity: int,
        idempotency_key: str | None,
        now: float,
        *,
        dry_run: bool,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            schema.ORDER_ID: claims.token_id,
            schema.FAN_ID: claims.fan_id,
            schema.SALE_ID: claims.sale_id,
            schema.WINDOW_ID: claims.window_id,
            schema.QUANTITY: quantity,
            schema.CREATED_AT: _decimal(now),
            schema.SYNTHETIC: claims.synthetic,
            schema.DRY_RUN: dry_run,
        }
        if idempotency_key is not None:
            item[schema.IDEMPOTENCY_KEY] = idempotency_key
        return {
            "Put": {
                "TableName": self._names[ORDER],
                "Item": item,
                "ConditionExpression": "attribute_not_exists(#order_id)",
                "ExpressionAttributeNames": {"#order_id": schema.ORDER_ID},
            }
        }

    def _free_window(
        self, claims: PurchaseClaims, reason: str, now: float
    ) -> dict[str, Any]:
        removed = _placeholders(*schema.WINDOW_SESSION_ATTRIBUTES)
        return {
            "Update": {
                "TableName": self._names[WINDOW],
                "Key": _window_key(claims),
                "UpdateExpression": (
                    "SET #status = :free, #freed_at = :now, #freed_reason = :reason "
                    f"REMOVE {', '.join(removed)}"
                ),
                "ConditionExpression": _WINDOW_HELD,
                "ExpressionAttributeNames": {
                    **_WINDOW_HELD_NAMES,
                    **removed,
                    "#freed_at": schema.FREED_AT,
                    "#freed_reason": schema.FREED_REASON,
                },
                "ExpressionAttributeValues": {
                    **_window_held_values(claims, now),
                    ":free": schema.WINDOW_FREE,
                    ":reason": reason,
                },
            }
        }

    def _close_fan(
        self, claims: PurchaseClaims, status: str, now: float, *, order: bool
    ) -> dict[str, Any]:
        update = "SET #status = :status, #finished_at = :now"
        names = {
            "#status": schema.STATUS,
            "#finished_at": schema.FINISHED_AT,
            "#window_id": schema.WINDOW_ID,
            "#sale_id": schema.SALE_ID,
        }
        values: dict[str, Any] = {
            ":status": status,
            ":now": _decimal(now),
            ":admitted": schema.ADMITTED,
            ":window": claims.window_id,
            ":sale": claims.sale_id,
        }
        if order:
            update += ", #order_id = :order"
            names["#order_id"] = schema.ORDER_ID
            values[":order"] = claims.token_id
        return {
            "Update": {
                "TableName": self._names[FAN],
                "Key": {schema.FAN_ID: claims.fan_id},
                "UpdateExpression": update,
                "ConditionExpression": (
                    "#status = :admitted AND #window_id = :window AND #sale_id = :sale"
                ),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _take_stock(self, sale_id: str, quantity: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._names[SALE],
                "Key": {schema.SALE_ID: sale_id},
                "UpdateExpression": (
                    "SET #tickets_left = #tickets_left - :quantity "
                    "ADD #sold_count :quantity"
                ),
                "ConditionExpression": "#tickets_left >= :quantity",
                "ExpressionAttributeNames": {
                    "#tickets_left": schema.TICKETS_LEFT,
                    "#sold_count": schema.SOLD_COUNT,
                },
                "ExpressionAttributeValues": {":quantity": quantity},
            }
        }


# A window is held by a token while it is busy with that token and open.
_WINDOW_HELD = (
    "#status = :busy AND #token_id = :token_id "
    "AND (attribute_not_exists(#expires_at) OR #expires_at > :now)"
)
_WINDOW_HELD_NAMES = {
    "#status": schema.WINDOW_STATUS,
    "#token_id": schema.TOKEN_ID,
    "#expires_at": schema.EXPIRES_AT,
}


def _window_held_values(claims: PurchaseClaims, now: float) -> dict[str, Any]:
    return {
        ":busy": schema.WINDOW_BUSY,
        ":token_id": claims.token_id,
        ":now": _decimal(now),
    }


def _placeholders(*names: str) -> dict[str, str]:
    # Every attribute name in an expression goes through a placeholder, because
    # some (status) are DynamoDB reserved words.
    return {f"#{name}": name for name in names}


def _window_key(claims: PurchaseClaims) -> dict[str, str]:
    return {schema.SALE_ID: claims.sale_id, schema.WINDOW_ID: claims.window_id}


def _decimal(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
