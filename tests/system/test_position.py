"""A fan's place in line and the poll interval, computed from the two items."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from system import position, schema
from system.position import (
    MAX_POLL_SECONDS,
    MIN_POLL_SECONDS,
    POLL_JITTER_RATIO,
    UNKNOWN_WAIT_POLL_SECONDS,
    next_poll_seconds,
)


class Edge:
    """A random source that always returns one end of the range."""

    def __init__(self, end: str) -> None:
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


def sale(serving: int = 100, rate: Any = Decimal("5"), sold_out: bool = False) -> Any:
    return {
        schema.SALE_ID: "tour",
        schema.SERVING: Decimal(serving),
        schema.ADMISSION_RATE: rate,
        schema.SOLD_OUT_FLAG: sold_out,
    }


def fan(**fields: Any) -> dict[str, Any]:
    return {schema.FAN_ID: "us-east-1:fan", schema.SALE_ID: "tour", **fields}


@pytest.mark.parametrize(
    ("queue_number", "serving", "expected"),
    [(150, 100, 50), (101, 100, 1), (100, 100, 0), (20, 100, 0), (1, 0, 1)],
)
def test_people_ahead_never_negative(
    queue_number: int, serving: int, expected: int
) -> None:
    assert position.people_ahead(queue_number, serving) == expected


@pytest.mark.parametrize(
    ("ahead", "rate", "expected"),
    [(50, 5.0, 10.0), (0, 5.0, 0.0), (3, 0.5, 6.0), (50, 0.0, None), (50, -1.0, None)],
)
def test_estimated_wait_from_rate(
    ahead: int, rate: float, expected: float | None
) -> None:
    assert position.estimated_wait_seconds(ahead, rate) == expected


def test_waiting_fan_position() -> None:
    where = position.position(
        fan(status=schema.WAITING, queue_number=Decimal(150)), sale(serving=100)
    )

    assert where.status == schema.WAITING
    assert where.queue_number == 150
    assert where.serving == 100
    assert where.people_ahead == 50
    assert where.estimated_wait_seconds == 10.0
    assert where.my_turn is False
    assert where.sold_out is False
    assert where.purchase_url is None


def test_unnumbered_fan_has_no_estimate() -> None:
    where = position.position(fan(), sale())

    assert where.status is None
    assert where.queue_number is None
    assert where.people_ahead is None
    assert where.estimated_wait_seconds is None
    assert where.my_turn is False


def test_zero_rate_has_no_estimate() -> None:
    where = position.position(
        fan(status=schema.WAITING, queue_number=Decimal(150)), sale(rate=Decimal(0))
    )

    assert where.people_ahead == 50
    assert where.estimated_wait_seconds is None


@pytest.mark.parametrize(
    ("fields", "my_turn"),
    [
        ({"status": schema.ADMITTED, "purchase_url": "http://127.0.0.1/p"}, True),
        ({"status": schema.ADMITTED}, False),
        ({"status": schema.WAITING, "purchase_url": "http://127.0.0.1/p"}, False),
        ({"status": schema.PURCHASED, "purchase_url": "http://127.0.0.1/p"}, False),
    ],
)
def test_my_turn_needs_admission_and_url(fields: dict[str, Any], my_turn: bool) -> None:
    where = position.position(fan(queue_number=Decimal(120), **fields), sale())

    assert where.my_turn is my_turn


def test_admitted_fan_has_nobody_ahead() -> None:
    where = position.position(
        fan(status=schema.ADMITTED, queue_number=Decimal(120), purchase_url="u"),
        sale(serving=100),
    )

    assert where.people_ahead == 0
    assert where.estimated_wait_seconds == 0.0


@pytest.mark.parametrize(
    ("status", "flag", "sold_out"),
    [
        (schema.WAITING, True, True),
        (schema.SOLD_OUT, False, True),
        (schema.WAITING, False, False),
    ],
)
def test_sold_out_from_sale_or_fan(status: str, flag: bool, sold_out: bool) -> None:
    where = position.position(
        fan(status=status, queue_number=Decimal(150)), sale(sold_out=flag)
    )

    assert where.sold_out is sold_out


def test_typed_json_items_read_alike() -> None:
    typed_fan = {
        schema.FAN_ID: {"S": "us-east-1:fan"},
        schema.STATUS: {"S": schema.WAITING},
        schema.QUEUE_NUMBER: {"N": "150"},
    }
    typed_sale = {
        schema.SERVING: {"N": "100"},
        schema.ADMISSION_RATE: {"N": "5"},
        schema.SOLD_OUT_FLAG: {"BOOL": False},
    }

    typed = position.position(typed_fan, typed_sale)
    plain = position.position(
        fan(status=schema.WAITING, queue_number=Decimal(150)), sale()
    )

    assert typed == plain


@pytest.mark.parametrize(
    ("wait", "base"),
    [
        (0.0, MIN_POLL_SECONDS),
        (5.0, MIN_POLL_SECONDS),
        (50.0, 5.0),
        (300.0, 30.0),
        (600.0, MAX_POLL_SECONDS),
        (36_000.0, MAX_POLL_SECONDS),
        (None, UNKNOWN_WAIT_POLL_SECONDS),
    ],
)
def test_poll_interval_grows_with_wait(wait: float | None, base: float) -> None:
    low = next_poll_seconds(wait, rng=Edge("low"))
    high = next_poll_seconds(wait, rng=Edge("high"))

    assert low == pytest.approx(max(base * (1 - POLL_JITTER_RATIO), MIN_POLL_SECONDS))
    assert high == pytest.approx(min(base * (1 + POLL_JITTER_RATIO), MAX_POLL_SECONDS))
    assert MIN_POLL_SECONDS <= low <= high <= MAX_POLL_SECONDS


@pytest.mark.parametrize("wait", [0.0, 30.0, 120.0, 600.0, 3600.0, None])
def test_poll_jitter_spreads_within_bounds(wait: float | None) -> None:
    rng = random.Random(7)

    intervals = [next_poll_seconds(wait, 2.0, 60.0, rng) for _ in range(200)]

    assert min(intervals) >= 2.0
    assert max(intervals) <= 60.0
    assert len(set(intervals)) == len(intervals)


def test_near_front_polls_often_far_back_rarely() -> None:
    rng = random.Random(3)

    near = max(next_poll_seconds(20.0, rng=rng) for _ in range(100))
    far = min(next_poll_seconds(600.0, rng=rng) for _ in range(100))

    assert near <= 5.0
    assert far >= 45.0


@pytest.mark.parametrize(("low", "high"), [(0.0, 10.0), (-1.0, 10.0), (10.0, 5.0)])
def test_poll_bounds_are_checked(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="Poll bounds"):
        next_poll_seconds(30.0, low, high)
