"""Configuration of a sale: stock, windows and timings, stored on the stack."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from system import schema
from system.errors import InvalidSaleError, SaleNotFoundError

DEFAULT_SALE_ID = "tour-2027"
DEFAULT_STOCK = 500
DEFAULT_WINDOW_COUNT = 20
DEFAULT_SESSION_SECONDS = 120
DEFAULT_CLAIM_TIMEOUT_SECONDS = 30
DEFAULT_MAX_TICKETS_PER_ORDER = 4
# Upper bounds that keep every value exact in a DynamoDB number.
MAX_SETTING = 10**12
MAX_EPOCH = 32_503_680_000  # 3000-01-01


@dataclass(frozen=True)
class SaleConfig:
    """A sale's stock, window count W, window session length and timings."""

    sale_id: str = DEFAULT_SALE_ID
    stock: int = DEFAULT_STOCK
    window_count: int = DEFAULT_WINDOW_COUNT
    session_seconds: float = DEFAULT_SESSION_SECONDS
    claim_timeout_seconds: float = DEFAULT_CLAIM_TIMEOUT_SECONDS
    on_sale_at: float = 0.0  # epoch seconds; 0 means on sale now
    max_tickets_per_order: int = DEFAULT_MAX_TICKETS_PER_ORDER

    def __post_init__(self) -> None:
        if not schema.SALE_ID_PATTERN.fullmatch(self.sale_id):
            raise InvalidSaleError(
                f"Sale id {self.sale_id!r} is invalid: use 1 to 64 printable "
                "ASCII characters without spaces or '#'."
            )
        checks = (
            ("stock", self.stock, 0),
            ("window_count", self.window_count, 1),
            ("session_seconds", self.session_seconds, 1),
            ("claim_timeout_seconds", self.claim_timeout_seconds, 1),
            ("max_tickets_per_order", self.max_tickets_per_order, 1),
        )
        for name, value, minimum in checks:
            if not math.isfinite(value) or value > MAX_SETTING:
                raise InvalidSaleError(
                    f"Sale {self.sale_id!r}: {name} is {value!r}, but must be a "
                    f"finite number no larger than {MAX_SETTING}."
                )
            if value < minimum:
                raise InvalidSaleError(
                    f"Sale {self.sale_id!r}: {name} is {value!r}, but must be at "
                    f"least {minimum}."
                )
        if not math.isfinite(self.on_sale_at) or not 0 <= self.on_sale_at < MAX_EPOCH:
            raise InvalidSaleError(
                f"Sale {self.sale_id!r}: on_sale_at is {self.on_sale_at!r}, but "
                "must be epoch seconds before the year 3000, or 0 for now."
            )
        if self.claim_timeout_seconds > self.session_seconds:
            raise InvalidSaleError(
                f"Sale {self.sale_id!r}: claim_timeout_seconds "
                f"({self.claim_timeout_seconds}) must not exceed session_seconds "
                f"({self.session_seconds})."
            )

    def to_item(self) -> dict[str, Any]:
        """Return the sale's item for the sales table, counters reset."""
        item: dict[str, Any] = {
            key: _to_dynamo(value) for key, value in asdict(self).items()
        }
        item.update(
            {
                schema.NEXT_NUMBER: 0,
                schema.SERVING: 0,
                schema.ADMITTED_COUNT: 0,
                schema.ADMISSION_RATE: Decimal(0),
                schema.TICKETS_LEFT: self.stock,
                schema.SOLD_OUT_FLAG: self.stock == 0,
                schema.UPDATED_AT: _to_dynamo(time.time()),
                schema.HEAD_NUMBERED_AT: 0,
                schema.WINDOWS_IN_USE: 0,
                schema.RECLAIMED_WINDOWS: 0,
                schema.SOLD_COUNT: 0,
            }
        )
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SaleConfig:
        """Read a sale's configuration from its sales-table item."""
        return cls(
            sale_id=str(item[schema.SALE_ID]),
            stock=int(item[schema.STOCK]),
            window_count=int(item[schema.WINDOW_COUNT]),
            session_seconds=float(item[schema.SESSION_SECONDS]),
            claim_timeout_seconds=float(item[schema.CLAIM_TIMEOUT_SECONDS]),
            on_sale_at=float(item.get(schema.ON_SALE_AT, 0)),
            max_tickets_per_order=int(
                item.get(schema.MAX_TICKETS_PER_ORDER, DEFAULT_MAX_TICKETS_PER_ORDER)
            ),
        )


def put_sale(sales_table: Any, config: SaleConfig) -> None:
    """Create the sale with fresh counters.

    ``sales_table`` is a boto3 DynamoDB ``Table`` resource. Raises
    ``InvalidSaleError`` when the sale exists: resetting the counters of a
    sale with fans in line would hand out queue numbers twice and sell its
    stock again.
    """
    try:
        sales_table.put_item(
            Item=config.to_item(),
            ConditionExpression="attribute_not_exists(#sale)",
            ExpressionAttributeNames={"#sale": schema.SALE_ID},
        )
    except sales_table.meta.client.exceptions.ConditionalCheckFailedException as exc:
        raise InvalidSaleError(
            f"Sale {config.sale_id!r} already exists. Resetting it would repeat "
            "queue numbers and sell its stock again; create a sale with a new "
            "--sale-id."
        ) from exc


def get_sale(sales_table: Any, sale_id: str) -> dict[str, Any]:
    """Return the sale's item, strongly consistent, or raise ``SaleNotFoundError``."""
    item = sales_table.get_item(Key={schema.SALE_ID: sale_id}, ConsistentRead=True).get(
        "Item"
    )
    if item is None:
        raise SaleNotFoundError(
            f"Sale {sale_id!r} is not configured on this stack. Create it with "
            "`boxoffice sale --sale-id ...` or pass an existing --sale-id."
        )
    return dict(item)


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    return value
