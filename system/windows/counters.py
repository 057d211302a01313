"""The counters fans poll on the sale item, and the admission rate behind them.

Fans compute "people ahead" as their queue number minus ``serving`` and the
estimated wait from ``admission_rate``. The processor publishes both, with
the windows in use, the head of the line and the reclaimed windows.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from system import schema
from system.windows.attributes import epoch, to_attributes

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60.0
# Until the first admission is this old, the rate divides by this span
# instead, so that the first few admissions do not read as a huge rate.
RATE_MIN_SPAN_SECONDS = 5.0


class AdmissionRate:
    """Admissions per second over the last minute, from admission times.

    Times are ``time.monotonic()`` seconds. In the first minute after this
    process first admits a fan of the sale, the count is divided by the time
    since that admission. So a sale that has just opened, or a processor that
    has just restarted, does not read as slow.
    """

    def __init__(self, window_seconds: float = RATE_WINDOW_SECONDS):
        self._window_seconds = window_seconds
        self._first_at: float | None = None
        self._times: deque[float] = deque()

    def record(self, at: float) -> None:
        """Count one admission at ``at``."""
        if self._first_at is None:
            self._first_at = at
        self._times.append(at)

    def per_second(self, now: float) -> float:
        """Return the admissions per second over the window ending at ``now``."""
        cutoff = now - self._window_seconds
        while self._times and self._times[0] <= cutoff:
            self._times.popleft()
        if self._first_at is None:
            return 0.0
        span = min(
            max(now - self._first_at, RATE_MIN_SPAN_SECONDS), self._window_seconds
        )
        return len(self._times) / span


@dataclass(frozen=True)
class Published:
    """The counter values one publish writes to the sale item."""

    admitted_delta: int  # real fans admitted since the last publish
    reclaimed_delta: int  # windows reclaimed since the last publish
    admission_rate: float
    windows_in_use: int
    head_numbered_at: float | None  # None keeps the stored value


class CounterWriter:
    """Writes counters to the sales table."""

    def __init__(self, dynamodb: Any, sales_table: str):
        self._dynamodb = dynamodb
        self._sales_table = sales_table

    def publish(self, sale_id: str, counters: Published, now: float) -> bool:
        """Add the deltas and set the gauges; return False if the sale is gone."""
        assignments = [
            "admission_rate = :rate",
            "windows_in_use = :in_use",
            "updated_at = :now",
        ]
        values: dict[str, Any] = {
            ":rate": Decimal(f"{counters.admission_rate:.3f}"),
            ":in_use": counters.windows_in_use,
            ":now": epoch(now),
            ":admitted": counters.admitted_delta,
            ":reclaimed": counters.reclaimed_delta,
        }
        if counters.head_numbered_at is not None:
            assignments.append("head_numbered_at = :head")
            values[":head"] = epoch(counters.head_numbered_at)
        expression = (
            "SET "
            + ", ".join(assignments)
            + " ADD admitted_count :admitted, reclaimed_windows :reclaimed"
        )
        return self._update(
            sale_id,
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(sale_id)",
            ExpressionAttributeValues=to_attributes(values),
        )

    def raise_serving(self, sale_id: str, serving: int) -> bool:
        """Set ``serving`` if it is higher than the stored value; return if it was."""
        return self._update(
            sale_id,
            UpdateExpression="SET serving = :serving",
            ConditionExpression=(
                "attribute_exists(sale_id) AND "
                "(attribute_not_exists(serving) OR serving < :serving)"
            ),
            ExpressionAttributeValues=to_attributes({":serving": serving}),
        )

    def mark_sold_out(self, sale_id: str, now: float) -> bool:
        """Set the sale's sold-out flag; return False if it was set already."""
        return self._update(
            sale_id,
            UpdateExpression="SET sold_out = :true, updated_at = :now",
            ConditionExpression=(
                "attribute_exists(sale_id) AND "
                "(attribute_not_exists(sold_out) OR sold_out = :false)"
            ),
            ExpressionAttributeValues=to_attributes(
                {":true": True, ":false": False, ":now": epoch(now)}
            ),
        )

    def _update(self, sale_id: str, **kwargs: Any) -> bool:
        try:
            self._dynamodb.update_item(
                TableName=self._sales_table,
                Key=to_attributes({schema.SALE_ID: sale_id}),
                **kwargs,
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True
