"""The stack's own record of a sale, read from its tables after a run.

The fans' view can be wrong (a reply lost on the way, a stale poll), so the
measures that matter are checked against what DynamoDB holds: each fan's
queue number and admission time, the sale's counters and the orders.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr

from system import schema
from system.clients import make_session
from system.settings import Settings
from system.stack import StackResources

logger = logging.getLogger(__name__)


@dataclass
class FanTruth:
    """One fan's item in the queue table."""

    fan_id: str
    queue_number: int | None
    status: str | None
    numbered_at: float | None
    admitted_at: float | None
    finished_at: float | None
    synthetic: bool


@dataclass
class OrderTruth:
    """One order in the orders table."""

    order_id: str
    fan_id: str
    quantity: int
    synthetic: bool


@dataclass
class StackTruth:
    """A sale's counters, fans and orders as the stack stores them."""

    sale_id: str
    stock: int
    tickets_left: int
    sold_out: bool
    reclaimed_windows: int
    admitted_count: int
    fans: dict[str, FanTruth] = field(default_factory=dict)
    orders: list[OrderTruth] = field(default_factory=list)

    @property
    def tickets_sold(self) -> int:
        """Tickets in the sale's orders, synthetic dry runs left out."""
        return sum(order.quantity for order in self.orders if not order.synthetic)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fans"] = list(data["fans"].values())
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StackTruth:
        fans = {fan["fan_id"]: FanTruth(**fan) for fan in data.pop("fans")}
        orders = [OrderTruth(**order) for order in data.pop("orders")]
        return cls(**data, fans=fans, orders=orders)


def read_truth(
    settings: Settings, resources: StackResources, sale_id: str
) -> StackTruth:
    """Scan the queue and orders tables for the sale and read its counters."""
    dynamodb = make_session(settings).resource(
        "dynamodb", endpoint_url=settings.endpoint_url
    )
    sale = (
        dynamodb.Table(resources.sales_table)
        .get_item(Key={schema.SALE_ID: sale_id}, ConsistentRead=True)
        .get("Item", {})
    )
    truth = StackTruth(
        sale_id=sale_id,
        stock=_int(sale.get(schema.STOCK)) or 0,
        tickets_left=_int(sale.get(schema.TICKETS_LEFT)) or 0,
        sold_out=bool(sale.get(schema.SOLD_OUT_FLAG, False)),
        reclaimed_windows=_int(sale.get(schema.RECLAIMED_WINDOWS)) or 0,
        admitted_count=_int(sale.get(schema.ADMITTED_COUNT)) or 0,
    )
    for item in _scan(dynamodb.Table(resources.queue_table), sale_id):
        fan = FanTruth(
            fan_id=str(item[schema.FAN_ID]),
            queue_number=_int(item.get(schema.QUEUE_NUMBER)),
            status=_text(item.get(schema.STATUS)),
            numbered_at=_float(item.get(schema.NUMBERED_AT)),
            admitted_at=_float(item.get(schema.ADMITTED_AT)),
            finished_at=_float(item.get(schema.FINISHED_AT)),
            synthetic=bool(item.get(schema.SYNTHETIC, False)),
        )
        truth.fans[fan.fan_id] = fan
    for item in _scan(dynamodb.Table(resources.orders_table), sale_id):
        truth.orders.append(
            OrderTruth(
                order_id=str(item.get(schema.ORDER_ID, "")),
                fan_id=str(item.get(schema.FAN_ID, "")),
                quantity=_int(item.get(schema.QUANTITY)) or 0,
                synthetic=bool(item.get(schema.SYNTHETIC, False)),
            )
        )
    logger.info(
        "Read sale %s: %d fans, %d orders", sale_id, len(truth.fans), len(truth.orders)
    )
    return truth


def _scan(table: Any, sale_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "FilterExpression": Attr(schema.SALE_ID).eq(sale_id),
        "ConsistentRead": True,
    }
    while True:
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _float(value: Any) -> float | None:
    if isinstance(value, (Decimal, int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
