"""Free windows whose fans let them lapse, or whose sale sold out.

Every free is conditional on the window still holding the same token, so a
purchase that frees the window at the same moment wins or loses cleanly and
the window is never freed twice.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from system import schema
from system.windows.attributes import epoch, to_attributes
from system.windows.store import Window

logger = logging.getLogger(__name__)

# Window attributes that only make sense while a fan is at the window. The
# purchase URL goes too: a browser takes a purchase URL to mean "your turn".
_WINDOW_FAN_ATTRIBUTES = (
    schema.FAN_ID,
    schema.QUEUE_NUMBER,
    schema.TOKEN_ID,
    schema.ADMITTED_AT,
    schema.CLAIM_BY,
    schema.EXPIRES_AT,
    schema.CLAIMED,
    schema.SYNTHETIC,
)


class FreeReason(enum.Enum):
    """Reason for freeing a window; the values are the metric's ``reason`` label."""

    PURCHASE = "purchase"  # freed by the ticketing service
    CLAIM_TIMEOUT = "claim_timeout"  # the fan never opened the purchase URL
    EXPIRED = "expired"  # the session ran out
    SOLD_OUT = "sold_out"

    @property
    def fan_status(self) -> str:
        return schema.SOLD_OUT if self is FreeReason.SOLD_OUT else schema.EXPIRED


class FreeResult(enum.Enum):
    """Effect of one attempt to free a window."""

    RECLAIMED = "reclaimed"  # window freed and its fan set to expired or sold_out
    WINDOW_ONLY = "window_only"  # window freed; its fan had moved on already
    CHANGED = "changed"  # the window had changed; nothing was written


def due_reason(window: Window, now: float) -> FreeReason | None:
    """Return why a busy window should be freed at epoch ``now``, if it should."""
    if not window.busy:
        return None
    if window.expires_at is None or now >= window.expires_at:
        return FreeReason.EXPIRED
    if not window.claimed and window.claim_by is not None and now >= window.claim_by:
        return FreeReason.CLAIM_TIMEOUT
    return None


class Reclaimer:
    """Frees windows with conditional transactions."""

    def __init__(self, dynamodb: Any, queue_table: str, windows_table: str):
        self._dynamodb = dynamodb
        self._queue_table = queue_table
        self._windows_table = windows_table

    def free(
        self, sale_id: str, window: Window, reason: FreeReason, now: float
    ) -> FreeResult:
        """Free the window and move its admitted fan to expired or sold_out."""
        window_update = self._window_update(sale_id, window, reason, now)
        items: list[dict[str, Any]] = [{"Update": window_update}]
        if window.fan_id is not None:
            items.append({"Update": self._fan_update(window, reason, now)})
        try:
            self._dynamodb.transact_write_items(TransactItems=items)
        except self._dynamodb.exceptions.TransactionCanceledException as exc:
            codes = [
                reason.get("Code", "None")
                for reason in exc.response.get("CancellationReasons", [])
            ]
            if codes[:1] == ["ConditionalCheckFailed"] or len(codes) < 2:
                return FreeResult.CHANGED
            if codes[1] != "ConditionalCheckFailed":
                logger.info(
                    "Freeing window %s of sale %s was cancelled (%s)",
                    window.window_id,
                    sale_id,
                    ", ".join(codes),
                )
                return FreeResult.CHANGED
            return self._free_window_only(window_update)
        return FreeResult.RECLAIMED if window.fan_id else FreeResult.WINDOW_ONLY

    def _free_window_only(self, window_update: dict[str, Any]) -> FreeResult:
        # The fan has bought already or has another status. The window is still
        # due because its own condition passed, so free it and leave the fan.
        try:
            self._dynamodb.update_item(**window_update)
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return FreeResult.CHANGED
        return FreeResult.WINDOW_ONLY

    def _window_update(
        self, sale_id: str, window: Window, reason: FreeReason, now: float
    ) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":busy": schema.WINDOW_BUSY,
            ":free": schema.WINDOW_FREE,
        }
        conditions = ["#status = :busy"]
        if window.token_id is None:
            conditions.append("attribute_not_exists(token_id)")
        else:
            conditions.append("token_id = :token")
            values[":token"] = window.token_id
        if reason is FreeReason.EXPIRED:
            conditions.append(
                "(attribute_not_exists(expires_at) OR expires_at <= :now)"
            )
            values[":now"] = epoch(now)
        elif reason is FreeReason.CLAIM_TIMEOUT:
            conditions.append(
                "(attribute_not_exists(claimed) OR claimed = :false) "
                "AND claim_by <= :now"
            )
            values[":now"] = epoch(now)
            values[":false"] = False
        return {
            "TableName": self._windows_table,
            "Key": to_attributes(
                {schema.SALE_ID: sale_id, schema.WINDOW_ID: window.window_id}
            ),
            "UpdateExpression": (
                "SET #status = :free REMOVE " + ", ".join(_WINDOW_FAN_ATTRIBUTES)
            ),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": {"#status": schema.WINDOW_STATUS},
            "ExpressionAttributeValues": to_attributes(values),
        }

    def _fan_update(
        self, window: Window, reason: FreeReason, now: float
    ) -> dict[str, Any]:
        return {
            "TableName": self._queue_table,
            "Key": to_attributes({schema.FAN_ID: window.fan_id}),
            "UpdateExpression": (
                "SET #status = :final, finished_at = :now REMOVE purchase_url"
            ),
            "ConditionExpression": "#status = :admitted AND window_id = :window",
            "ExpressionAttributeNames": {"#status": schema.STATUS},
            "ExpressionAttributeValues": to_attributes(
                {
                    ":final": reason.fan_status,
                    ":now": epoch(now),
                    ":admitted": schema.ADMITTED,
                    ":window": window.window_id,
                }
            ),
        }
