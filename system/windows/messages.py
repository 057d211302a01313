"""The work queue: receive fans' messages, keep them in flight, delete them.

The work queue is FIFO with one message group per sale. While any message of
a group is in flight, SQS returns no later message of that group, so the
messages the processor keeps in flight are the heads of their sales' lines.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from system import schema
from system.windows.errors import MalformedMessageError

logger = logging.getLogger(__name__)

RECEIVE_BATCH_SIZE = 10  # the most ReceiveMessage returns
SQS_BATCH_SIZE = 10  # maximum entries in one SQS batch call


@dataclass
class WorkMessage:
    """One fan's work message, received and held in flight by the processor."""

    fan_id: str
    sale_id: str
    queue_number: int
    synthetic: bool
    numbered_at: float  # epoch seconds
    message_id: str
    receipt_handle: str
    visible_until: float = field(default=0.0)  # time.monotonic() seconds


def parse_message(raw: dict[str, Any]) -> WorkMessage:
    """Build a ``WorkMessage`` from an SQS message, checking its body's fields.

    Raises ``MalformedMessageError`` when the body is not JSON or a field is
    missing or of the wrong type.
    """
    message_id = str(raw.get("MessageId", "?"))
    try:
        body = json.loads(raw["Body"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise MalformedMessageError(
            f"Work message {message_id} has no JSON body: {exc}"
        ) from exc
    if not isinstance(body, dict):
        raise MalformedMessageError(
            f"Work message {message_id} has body {body!r}; expected a JSON object."
        )
    try:
        fan_id = body[schema.FAN_ID]
        sale_id = body[schema.SALE_ID]
        queue_number = body[schema.QUEUE_NUMBER]
        numbered_at = float(body.get(schema.NUMBERED_AT, 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessageError(
            f"Work message {message_id} lacks a valid field {exc}; expected "
            f"{', '.join(schema.MESSAGE_FIELDS)}."
        ) from exc
    if not isinstance(fan_id, str) or not fan_id:
        raise MalformedMessageError(
            f"Work message {message_id} has fan_id {fan_id!r}; expected a string."
        )
    if not isinstance(sale_id, str) or not sale_id:
        raise MalformedMessageError(
            f"Work message {message_id} has sale_id {sale_id!r}; expected a string."
        )
    if isinstance(queue_number, bool) or not isinstance(queue_number, int):
        raise MalformedMessageError(
            f"Work message {message_id} has queue_number {queue_number!r}; "
            "expected an integer."
        )
    return WorkMessage(
        fan_id=fan_id,
        sale_id=sale_id,
        queue_number=queue_number,
        synthetic=bool(body.get(schema.SYNTHETIC, False)),
        numbered_at=numbered_at,
        message_id=message_id,
        receipt_handle=str(raw["ReceiptHandle"]),
    )


class WorkQueue:
    """Receives, extends, delays and deletes messages of the FIFO work queue."""

    def __init__(self, sqs: Any, queue_url: str, visibility_timeout_seconds: int):
        self._sqs = sqs
        self._url = queue_url
        self._visibility_seconds = visibility_timeout_seconds

    def receive(self) -> tuple[list[WorkMessage], int]:
        """Receive up to one batch; return the valid messages and the batch size.

        A malformed message is logged and made visible again at once, so it
        reaches the dead-letter queue after the queue's maxReceiveCount.
        """
        response = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=RECEIVE_BATCH_SIZE,
            VisibilityTimeout=self._visibility_seconds,
            WaitTimeSeconds=0,
        )
        raw_messages = response.get("Messages", [])
        deadline = time.monotonic() + self._visibility_seconds
        messages = []
        for raw in raw_messages:
            try:
                message = parse_message(raw)
            except MalformedMessageError as exc:
                logger.warning(
                    "Rejected a malformed work message; it moves to the "
                    "dead-letter queue after maxReceiveCount receives: %s",
                    exc,
                )
                self._change_visibility(raw["ReceiptHandle"], 0)
                continue
            message.visible_until = deadline
            messages.append(message)
        return messages, len(raw_messages)

    def delete(self, messages: Sequence[WorkMessage]) -> None:
        """Delete handled messages; a failed delete only causes a redelivery."""
        for chunk in _chunks(messages, SQS_BATCH_SIZE):
            response = self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message.receipt_handle}
                    for index, message in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                message = chunk[int(failure["Id"])]
                logger.warning(
                    "Could not delete work message %s of fan %s: %s",
                    message.message_id,
                    message.fan_id,
                    failure.get("Message", failure.get("Code")),
                )

    def extend(self, messages: Iterable[WorkMessage], now: float) -> list[WorkMessage]:
        """Keep held messages in flight; return those that could not be kept.

        A message is extended once less than half of its visibility timeout
        is left, by a full timeout. ``now`` is ``time.monotonic()``.
        """
        due = [
            message
            for message in messages
            if message.visible_until - now < self._visibility_seconds / 2
        ]
        lost = []
        for chunk in _chunks(due, SQS_BATCH_SIZE):
            response = self._sqs.change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message.receipt_handle,
                        "VisibilityTimeout": self._visibility_seconds,
                    }
                    for index, message in enumerate(chunk)
                ],
            )
            failed = {int(failure["Id"]) for failure in response.get("Failed", [])}
            for index, message in enumerate(chunk):
                if index in failed:
                    lost.append(message)
                else:
                    message.visible_until = now + self._visibility_seconds
        return lost

    def delay(self, message: WorkMessage, seconds: int) -> None:
        """Make a held message visible again after ``seconds``."""
        self._change_visibility(message.receipt_handle, seconds)

    def release(self, messages: Sequence[WorkMessage]) -> None:
        """Make held messages visible again at once, for the next consumer."""
        for chunk in _chunks(messages, SQS_BATCH_SIZE):
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": message.receipt_handle,
                        "VisibilityTimeout": 0,
                    }
                    for index, message in enumerate(chunk)
                ],
            )

    def _change_visibility(self, receipt_handle: str, seconds: int) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self._url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=seconds,
            )
        except self._sqs.exceptions.ReceiptHandleIsInvalid:
            logger.debug("Receipt handle expired before a visibility change")


def _chunks(items: Sequence[WorkMessage], size: int) -> list[Sequence[WorkMessage]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
