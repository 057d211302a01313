"""Conversion between Python values and DynamoDB's typed attribute values."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``values`` as typed attribute values; numbers must not be floats."""
    return {name: _SERIALIZER.serialize(value) for name, value in values.items()}


def from_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """Return a typed item as plain values; numbers come back as ``Decimal``."""
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def epoch(seconds: float) -> Decimal:
    """Return epoch seconds as a DynamoDB number, to the microsecond.

    Admission times keep microseconds so that sorting fans by ``admitted_at``
    gives the order in which they were admitted.
    """
    return Decimal(f"{seconds:.6f}")


def optional_float(value: Any) -> float | None:
    """Return a stored number as a float, or ``None`` when it is absent."""
    return None if value is None else float(value)
