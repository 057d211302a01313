"""Window items in the windows table: read them and create the missing ones."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from system import schema
from system.windows.attributes import from_attributes, optional_float, to_attributes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """One ticket-issuing window of a sale, as stored in the windows table."""

    window_id: str
    status: str = schema.WINDOW_FREE
    fan_id: str | None = None
    queue_number: int | None = None
    token_id: str | None = None
    admitted_at: float | None = None
    claim_by: float | None = None
    expires_at: float | None = None
    claimed: bool = False
    synthetic: bool = False

    @property
    def busy(self) -> bool:
        return self.status == schema.WINDOW_BUSY

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Window:
        """Read a window from its plain (deserialized) item."""
        number = item.get(schema.QUEUE_NUMBER)
        fan_id = item.get(schema.FAN_ID)
        token_id = item.get(schema.TOKEN_ID)
        return cls(
            window_id=str(item[schema.WINDOW_ID]),
            status=str(item.get(schema.WINDOW_STATUS, schema.WINDOW_FREE)),
            fan_id=None if fan_id is None else str(fan_id),
            queue_number=None if number is None else int(number),
            token_id=None if token_id is None else str(token_id),
            admitted_at=optional_float(item.get(schema.ADMITTED_AT)),
            claim_by=optional_float(item.get(schema.CLAIM_BY)),
            expires_at=optional_float(item.get(schema.EXPIRES_AT)),
            claimed=bool(item.get(schema.CLAIMED, False)),
            synthetic=bool(item.get(schema.SYNTHETIC, False)),
        )


def window_ids(count: int) -> list[str]:
    """Return the ids of a sale's first ``count`` windows: w001, w002, ..."""
    return [f"w{index:03d}" for index in range(1, count + 1)]


def load_windows(dynamodb: Any, windows_table: str, sale_id: str) -> dict[str, Window]:
    """Read every window of the sale, strongly consistent, keyed by window id."""
    windows: dict[str, Window] = {}
    kwargs: dict[str, Any] = {
        "TableName": windows_table,
        "KeyConditionExpression": "sale_id = :sale",
        "ExpressionAttributeValues": {":sale": {"S": sale_id}},
        "ConsistentRead": True,
    }
    while True:
        page = dynamodb.query(**kwargs)
        for raw in page.get("Items", []):
            window = Window.from_item(from_attributes(raw))
            windows[window.window_id] = window
        if "LastEvaluatedKey" not in page:
            return windows
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def create_missing_windows(
    dynamodb: Any, windows_table: str, sale_id: str, count: int, existing: set[str]
) -> list[str]:
    """Create the sale's windows that do not exist yet, free; return their ids.

    Each put is conditional on the window not existing, so a restarted or
    second processor never resets a window that is serving a fan.
    """
    created = []
    for window_id in window_ids(count):
        if window_id in existing:
            continue
        item = {
            schema.SALE_ID: sale_id,
            schema.WINDOW_ID: window_id,
            schema.WINDOW_STATUS: schema.WINDOW_FREE,
        }
        try:
            dynamodb.put_item(
                TableName=windows_table,
                Item=to_attributes(item),
                ConditionExpression="attribute_not_exists(window_id)",
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue
        created.append(window_id)
    return created
