"""Admit a fan to a free window with one transaction, or tell it sold out.

The transaction moves the window from free to busy and the fan from waiting
to admitted together, each under a condition. A duplicate or redelivered
message finds the fan no longer waiting, so the transaction is cancelled as
a whole and the window stays free.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

from system import schema, tokens
from system.sale import SaleConfig
from system.windows.attributes import epoch, from_attributes, to_attributes
from system.windows.messages import WorkMessage
from system.windows.store import Window

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """Result of handling one work message."""

    ADMITTED = "admitted"
    SOLD_OUT = "sold_out"  # the fan's status was set to sold_out
    DUPLICATE = "duplicate"  # the fan is no longer waiting with this number
    # The fan's item has no queue number. The forwarder writes the number
    # before it sends the message, so the fan overwrote its own item.
    NOT_NUMBERED = "not_numbered"
    FAN_GONE = "fan_gone"  # the fan's item was deleted: a probe cleaned it up
    WINDOW_TAKEN = "window_taken"  # the window was not free after all
    CONFLICT = "conflict"  # another write raced this one; try again


@dataclass(frozen=True)
class Tables:
    """The two tables an admission writes to."""

    queue_table: str
    windows_table: str


class Admitter:
    """Writer of the admissions and sold-out statuses of work messages' fans."""

    def __init__(
        self, dynamodb: Any, tables: Tables, secret: bytes, ticketing_url: str
    ):
        self._dynamodb = dynamodb
        self._tables = tables
        self._secret = secret
        self._ticketing_url = ticketing_url

    def admit(
        self, message: WorkMessage, window_id: str, sale: SaleConfig, now: float
    ) -> tuple[Outcome, Window | None]:
        """Admit the message's fan to the free window; return the busy window."""
        claim_by = now + sale.claim_timeout_seconds
        expires_at = now + sale.session_seconds
        token, claims = tokens.issue(
            self._secret,
            fan_id=message.fan_id,
            sale_id=message.sale_id,
            window_id=window_id,
            expires_at=expires_at,
            synthetic=message.synthetic,
        )
        times = {
            ":admitted_at": epoch(now),
            ":claim_by": epoch(claim_by),
            ":expires_at": epoch(expires_at),
        }
        window_update = {
            "TableName": self._tables.windows_table,
            "Key": to_attributes(
                {schema.SALE_ID: message.sale_id, schema.WINDOW_ID: window_id}
            ),
            "UpdateExpression": (
                "SET #status = :busy, fan_id = :fan, queue_number = :number, "
                "token_id = :token, admitted_at = :admitted_at, "
                "claim_by = :claim_by, expires_at = :expires_at, "
                "claimed = :false, synthetic = :synthetic"
            ),
            "ConditionExpression": "#status = :free",
            "ExpressionAttributeNames": {"#status": schema.WINDOW_STATUS},
            "ExpressionAttributeValues": to_attributes(
                {
                    ":busy": schema.WINDOW_BUSY,
                    ":free": schema.WINDOW_FREE,
                    ":fan": message.fan_id,
                    ":number": message.queue_number,
                    ":token": claims.token_id,
                    ":false": False,
                    ":synthetic": message.synthetic,
                    **times,
                }
            ),
        }
        fan_update = {
            "TableName": self._tables.queue_table,
            "Key": to_attributes({schema.FAN_ID: message.fan_id}),
            "UpdateExpression": (
                "SET #status = :admitted, window_id = :window, purchase_url = :url, "
                "admitted_at = :admitted_at, claim_by = :claim_by, "
                "expires_at = :expires_at"
            ),
            "ConditionExpression": "#status = :waiting AND queue_number = :number",
            "ExpressionAttributeNames": {"#status": schema.STATUS},
            "ExpressionAttributeValues": to_attributes(
                {
                    ":admitted": schema.ADMITTED,
                    ":waiting": schema.WAITING,
                    ":window": window_id,
                    ":url": tokens.purchase_url(self._ticketing_url, token),
                    ":number": message.queue_number,
                    **times,
                }
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            self._dynamodb.transact_write_items(
                TransactItems=[{"Update": window_update}, {"Update": fan_update}]
            )
        except self._dynamodb.exceptions.TransactionCanceledException as exc:
            return self._explain_cancel(exc, message), None
        window = Window(
            window_id=window_id,
            status=schema.WINDOW_BUSY,
            fan_id=message.fan_id,
            queue_number=message.queue_number,
            token_id=claims.token_id,
            admitted_at=now,
            claim_by=claim_by,
            expires_at=expires_at,
            claimed=False,
            synthetic=message.synthetic,
        )
        return Outcome.ADMITTED, window

    def tell_sold_out(self, message: WorkMessage, now: float) -> Outcome:
        """Move the message's waiting fan to sold_out."""
        try:
            self._dynamodb.update_item(
                TableName=self._tables.queue_table,
                Key=to_attributes({schema.FAN_ID: message.fan_id}),
                UpdateExpression="SET #status = :sold_out, finished_at = :now",
                ConditionExpression="#status = :waiting AND queue_number = :number",
                ExpressionAttributeNames={"#status": schema.STATUS},
                ExpressionAttributeValues=to_attributes(
                    {
                        ":sold_out": schema.SOLD_OUT,
                        ":waiting": schema.WAITING,
                        ":number": message.queue_number,
                        ":now": epoch(now),
                    }
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException as exc:
            return _fan_outcome(exc.response.get("Item"), message)
        return Outcome.SOLD_OUT

    def _explain_cancel(self, exc: Any, message: WorkMessage) -> Outcome:
        reasons = exc.response.get("CancellationReasons", [])
        codes = [reason.get("Code", "None") for reason in reasons]
        if len(codes) < 2:
            return Outcome.CONFLICT
        window_code, fan_code = codes[0], codes[1]
        if fan_code == "ConditionalCheckFailed":
            return _fan_outcome(reasons[1].get("Item"), message)
        if window_code == "ConditionalCheckFailed":
            return Outcome.WINDOW_TAKEN
        logger.info(
            "Admission of fan %s was cancelled (%s); retrying",
            message.fan_id,
            ", ".join(codes),
        )
        return Outcome.CONFLICT


def _fan_outcome(old_item: dict[str, Any] | None, message: WorkMessage) -> Outcome:
    """Classify a fan whose waiting-with-this-number condition failed."""
    if not old_item:
        return Outcome.FAN_GONE
    fan = from_attributes(old_item)
    if fan.get(schema.STATUS) is None or fan.get(schema.QUEUE_NUMBER) is None:
        return Outcome.NOT_NUMBERED
    if (
        fan.get(schema.STATUS) == schema.WAITING
        and int(fan[schema.QUEUE_NUMBER]) == message.queue_number
    ):
        return Outcome.CONFLICT  # it changed back between the check and now
    return Outcome.DUPLICATE
