"""Parse and validate the queue table's stream records.

A record becomes a ``FanJoin`` when it is an INSERT that a browser could have
written, a ``SkippedRecord`` when it is a MODIFY or REMOVE, and a
``BadRecord`` otherwise. A synthetic fan injected already numbered (the
probe's pump mode) is skipped too. Only the browser's attributes are read from the new
image: whatever else a client wrote is ignored here and removed when the fan
is numbered. This module makes no AWS calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from system import schema

# A browser writes four short attributes, 150 to 250 bytes as measured by
# item_size_bytes. A much larger item was not written by the fans' page, so
# it is dead-lettered instead of numbered.
MAX_FAN_ITEM_BYTES = 4096
# Cognito identity ids are 1 to 55 characters long (botocore's model of the
# cognito-identity API); the limit leaves room for the ids of test fans.
MAX_FAN_ID_LENGTH = 128
# Sale ids become the work queue's MessageGroupId, which SQS limits to
# printable ASCII without spaces (0x21-0x7e). The sales configuration allows
# 64 characters and reserves "#" (0x23) for the forwarder's own counters.
SALE_ID_PATTERN = schema.SALE_ID_PATTERN
# Attributes read from an INSERT's new image. stream_sequence is read only
# to reject a client that forged it.
IMAGE_ATTRIBUTES = (
    *schema.BROWSER_ATTRIBUTES,
    schema.STREAM_SEQUENCE,
    schema.QUEUE_NUMBER,
)
INSERT = "INSERT"
EVENT_NAMES = frozenset({INSERT, "MODIFY", "REMOVE"})

_DESERIALIZER = TypeDeserializer()


class BadRecordReason(StrEnum):
    """Reason a stream record cannot be forwarded, stored in its dead letter."""

    MALFORMED = "malformed_record"
    INVALID_KEY = "invalid_key"
    INVALID_SALE_ID = "invalid_sale_id"
    UNKNOWN_SALE = "unknown_sale"
    INVALID_CLIENT_TIME = "invalid_client_time"
    INVALID_SYNTHETIC = "invalid_synthetic"
    OVERSIZED_ITEM = "oversized_item"
    FORGED_SEQUENCE = "forged_stream_sequence"


@dataclass(frozen=True)
class FanJoin:
    """A fan's INSERT record, validated: who joined which sale, and when."""

    fan_id: str
    sale_id: str
    client_time: Decimal  # the browser's clock, epoch milliseconds
    synthetic: bool
    sequence_number: str
    event_id: str | None
    record: object = field(default=None, repr=False, compare=False)  # as received


@dataclass(frozen=True)
class SkippedRecord:
    """A MODIFY or REMOVE record, which the forwarder ignores."""

    event_name: str
    sequence_number: str


@dataclass(frozen=True)
class BadRecord:
    """A record that cannot be forwarded, with what is known of its ids."""

    reason: BadRecordReason
    detail: str  # one sentence naming the value at fault
    record: object  # the record as received
    event_id: str | None = None
    sequence_number: str | None = None
    keys: object = None  # the record's Keys, DynamoDB JSON, as received
    fan_id: str | None = None
    sale_id: str | None = None


ParsedRecord = FanJoin | SkippedRecord | BadRecord


def parse_record(raw: object) -> ParsedRecord:
    """Classify one stream record from a Lambda event's ``Records`` list."""
    if not isinstance(raw, dict):
        return BadRecord(
            BadRecordReason.MALFORMED,
            f"The record is a {type(raw).__name__}, not a JSON object.",
            raw,
        )
    stream = raw.get("dynamodb")
    event_id = _string_or_none(raw.get("eventID"))
    if not isinstance(stream, dict):
        return BadRecord(
            BadRecordReason.MALFORMED,
            "The record has no 'dynamodb' object.",
            raw,
            event_id=event_id,
        )
    sequence_number = _string_or_none(stream.get("SequenceNumber"))
    if sequence_number is None:
        return BadRecord(
            BadRecordReason.MALFORMED,
            "The record has no SequenceNumber.",
            raw,
            event_id=event_id,
            keys=stream.get("Keys"),
        )
    event_name = raw.get("eventName")
    if event_name not in EVENT_NAMES:
        return BadRecord(
            BadRecordReason.MALFORMED,
            f"The record's eventName {event_name!r} is not a DynamoDB event.",
            raw,
            event_id=event_id,
            sequence_number=sequence_number,
            keys=stream.get("Keys"),
        )
    if event_name != INSERT:
        return SkippedRecord(str(event_name), sequence_number)
    return _parse_insert(raw, stream, event_id, sequence_number)


def item_size_bytes(image: object) -> int:
    """Return the size of a stream image as compact JSON, in UTF-8 bytes.

    This counts the type tags and quotes that DynamoDB's own item size does
    not, so it over-estimates a little and the limit errs on the strict side.
    """
    return len(json.dumps(image, separators=(",", ":"), default=str).encode())


@dataclass(frozen=True)
class _RecordIds:
    """The ids of an INSERT record, for building its ``BadRecord``."""

    raw: dict[str, Any]
    event_id: str | None
    sequence_number: str
    keys: object

    def bad(
        self,
        reason: BadRecordReason,
        detail: str,
        *,
        fan_id: str | None = None,
        sale_id: str | None = None,
    ) -> BadRecord:
        return BadRecord(
            reason,
            detail,
            self.raw,
            event_id=self.event_id,
            sequence_number=self.sequence_number,
            keys=self.keys,
            fan_id=fan_id,
            sale_id=sale_id,
        )


def _parse_insert(
    raw: dict[str, Any],
    stream: dict[str, Any],
    event_id: str | None,
    sequence_number: str,
) -> FanJoin | SkippedRecord | BadRecord:
    keys = stream.get("Keys")
    ids = _RecordIds(raw, event_id, sequence_number, keys)
    image = stream.get("NewImage")
    if not isinstance(image, dict) or not isinstance(keys, dict):
        return ids.bad(
            BadRecordReason.MALFORMED,
            "The INSERT record lacks Keys or NewImage. The forwarder needs a "
            "stream of view type NEW_IMAGE or NEW_AND_OLD_IMAGES.",
        )
    size = item_size_bytes(image)
    if size > MAX_FAN_ITEM_BYTES:
        return ids.bad(
            BadRecordReason.OVERSIZED_ITEM,
            f"The fan's item is {size} bytes, over the limit of "
            f"{MAX_FAN_ITEM_BYTES} bytes.",
            fan_id=_key_string(keys),
        )
    try:
        fan_id = _deserialize(keys, schema.FAN_ID)
        # Only what a browser writes is read, so an odd attribute a client
        # added cannot make the record fail.
        image_values = {name: _deserialize(image, name) for name in IMAGE_ATTRIBUTES}
    except (AttributeError, TypeError, ValueError, ArithmeticError) as exc:
        return ids.bad(
            BadRecordReason.MALFORMED,
            f"The record's Keys or NewImage is not valid DynamoDB JSON: {exc!r}.",
        )
    if not isinstance(fan_id, str) or not 0 < len(fan_id) <= MAX_FAN_ID_LENGTH:
        return ids.bad(
            BadRecordReason.INVALID_KEY,
            f"The key {schema.FAN_ID} is {_describe(fan_id)}, expected a string "
            f"of 1 to {MAX_FAN_ID_LENGTH} characters.",
        )
    return _validate_join(image_values, fan_id, ids)


def _validate_join(
    image: dict[str, Any], fan_id: str, ids: _RecordIds
) -> FanJoin | SkippedRecord | BadRecord:
    sale_id = image.get(schema.SALE_ID)
    if not isinstance(sale_id, str) or not SALE_ID_PATTERN.fullmatch(sale_id):
        return ids.bad(
            BadRecordReason.INVALID_SALE_ID,
            f"The attribute {schema.SALE_ID} is {_describe(sale_id)}, expected a "
            "string of 1 to 64 printable ASCII characters without spaces or '#'.",
            fan_id=fan_id,
        )

    client_time = image.get(schema.CLIENT_TIME)
    # boto3's deserializer (1.43) turns an "N" value that is no number into NaN.
    if not isinstance(client_time, Decimal) or not client_time.is_finite():
        return ids.bad(
            BadRecordReason.INVALID_CLIENT_TIME,
            f"The attribute {schema.CLIENT_TIME} is {_describe(client_time)}, "
            "expected a number (epoch milliseconds).",
            fan_id=fan_id,
            sale_id=sale_id,
        )

    synthetic = image.get(schema.SYNTHETIC)
    if synthetic is None:
        synthetic = False
    elif not isinstance(synthetic, bool):
        return ids.bad(
            BadRecordReason.INVALID_SYNTHETIC,
            f"The attribute {schema.SYNTHETIC} is {_describe(synthetic)}, "
            "expected a boolean.",
            fan_id=fan_id,
            sale_id=sale_id,
        )

    # The probe's pump mode writes a synthetic fan already numbered and sends
    # its work message itself, to test the windows alone. Numbering it again
    # would reset it under the probe. A real fan gains nothing by copying
    # this: no work message is sent for it, so no window ever admits it.
    if synthetic and image.get(schema.QUEUE_NUMBER) is not None:
        return SkippedRecord(INSERT, ids.sequence_number)

    # The forwarder writes stream_sequence with an update, so it appears on
    # MODIFY records only. On an INSERT the client wrote it, and if it equals
    # the record's own sequence number the redelivery check would take the fan
    # for numbered already.
    if image.get(schema.STREAM_SEQUENCE) == ids.sequence_number:
        return ids.bad(
            BadRecordReason.FORGED_SEQUENCE,
            f"The client wrote {schema.STREAM_SEQUENCE} equal to the record's "
            "own sequence number.",
            fan_id=fan_id,
            sale_id=sale_id,
        )

    return FanJoin(
        fan_id=fan_id,
        sale_id=sale_id,
        client_time=client_time,
        synthetic=synthetic,
        sequence_number=ids.sequence_number,
        event_id=ids.event_id,
        record=ids.raw,
    )


def _deserialize(attributes: dict[str, Any], name: str) -> Any:
    value = attributes.get(name)
    return None if value is None else _DESERIALIZER.deserialize(value)


def _string_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _key_string(keys: dict[str, Any]) -> str | None:
    value = keys.get(schema.FAN_ID)
    if not isinstance(value, dict):
        return None
    fan_id = _string_or_none(value.get("S"))
    if fan_id is None or len(fan_id) > MAX_FAN_ID_LENGTH:
        return None
    return fan_id


def _describe(value: object) -> str:
    if value is None:
        return "missing"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"
