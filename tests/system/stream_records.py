"""Factories for DynamoDB stream records shaped as Lambda receives them."""

from __future__ import annotations

import itertools
import time
import uuid
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from system import schema

STREAM_ARN = (
    "arn:aws:dynamodb:us-east-1:123456789012:table/boxoffice-queue/"
    "stream/2027-01-01T00:00:00.000"
)
_serializer = TypeSerializer()
_sequence = itertools.count(1)


def fan_id() -> str:
    """Return a fresh id shaped like a Cognito identity id."""
    return f"us-east-1:{uuid.uuid4()}"


def sequence_number() -> str:
    """Return a fresh sequence number shaped like a DynamoDB stream's."""
    return f"{4_000_000_000_000_000_000 + next(_sequence):021d}"


def browser_item(
    sale_id: object = "tour-2027", fan: str | None = None, **attributes: Any
) -> dict[str, Any]:
    """Return the item a browser writes when its fan joins, as Python values.

    ``attributes`` add to it or replace its values; a value of ``None`` drops
    that attribute.
    """
    item: dict[str, Any] = {
        schema.FAN_ID: fan or fan_id(),
        schema.SALE_ID: sale_id,
        schema.CLIENT_TIME: Decimal(int(time.time() * 1000)),
        schema.SYNTHETIC: False,
    }
    item.update(attributes)
    return {name: value for name, value in item.items() if value is not None}


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """Return an item in DynamoDB JSON, as stream images carry it."""
    return {name: _serializer.serialize(value) for name, value in item.items()}


def stream_record(
    item: dict[str, Any],
    *,
    event_name: str = "INSERT",
    sequence: str | None = None,
    image: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return one record of a NEW_IMAGE stream for ``item``.

    ``image`` replaces the serialized new image, for records a serializer
    would refuse to build.
    """
    keys = {schema.FAN_ID: _serializer.serialize(item[schema.FAN_ID])}
    new_image = serialize(item) if image is None else image
    stream: dict[str, Any] = {
        "ApproximateCreationDateTime": int(time.time()),
        "Keys": keys,
        "SequenceNumber": sequence or sequence_number(),
        "SizeBytes": 40 + len(repr(new_image)),
        "StreamViewType": "NEW_IMAGE",
    }
    if event_name != "REMOVE":
        stream["NewImage"] = new_image
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": stream,
        "eventSourceARN": STREAM_ARN,
    }
