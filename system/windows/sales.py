"""The sales the processor serves, read from the sales table."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from system import schema
from system.errors import InvalidSaleError
from system.sale import SaleConfig
from system.windows.attributes import from_attributes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sale:
    """A sale's configuration and the counters the processor reads back."""

    config: SaleConfig
    tickets_left: int
    sold_out_flag: bool
    serving: int
    next_number: int

    @property
    def sale_id(self) -> str:
        return self.config.sale_id

    @property
    def sold_out(self) -> bool:
        """Whether the sale has no tickets left or is already marked sold out."""
        return self.sold_out_flag or self.tickets_left <= 0

    def on_sale(self, now: float) -> bool:
        """Return whether the sale is open for admissions at epoch ``now``."""
        return self.config.on_sale_at <= now

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Sale:
        """Read a sale from its plain (deserialized) sales-table item."""
        config = SaleConfig.from_item(item)
        return cls(
            config=config,
            tickets_left=int(item.get(schema.TICKETS_LEFT, config.stock)),
            sold_out_flag=bool(item.get(schema.SOLD_OUT_FLAG, False)),
            serving=int(item.get(schema.SERVING, 0)),
            next_number=int(item.get(schema.NEXT_NUMBER, 0)),
        )


def scan_sales(dynamodb: Any, sales_table: str) -> tuple[dict[str, Sale], set[str]]:
    """Read every sale in the table; return the valid ones and the invalid ids.

    The forwarder's statistics item shares the table and is skipped.
    """
    sales: dict[str, Sale] = {}
    invalid: set[str] = set()
    kwargs: dict[str, Any] = {"TableName": sales_table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        for raw in page.get("Items", []):
            item = from_attributes(raw)
            sale_id = str(item.get(schema.SALE_ID, ""))
            if sale_id == schema.FORWARDER_STATS_KEY:
                continue
            try:
                sales[sale_id] = Sale.from_item(item)
            except (InvalidSaleError, KeyError, TypeError, ValueError):
                invalid.add(sale_id)
        if "LastEvaluatedKey" not in page:
            return sales, invalid
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
