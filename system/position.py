"""A fan's place in line, computed from the fan's item and the sale's counters.

The Python fan client uses these functions, and the browser's queue page
computes the same values the same way. Each function is pure: it reads the
two items (as the boto3 resource returns them, or in DynamoDB's typed JSON
such as ``{"N": "5"}``) and never calls the stack.

Polls are spread out with jitter of ±``POLL_JITTER_RATIO`` around an interval
that grows with the estimated wait, clamped between a minimum and a maximum.
The jittered range is clamped too, so no fan polls outside the bounds, and
fans at a bound still spread over a fifth of it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from system import schema

MIN_POLL_SECONDS = 2.0
MAX_POLL_SECONDS = 60.0
# A fan polls about ten times over its estimated wait: ten minutes out it
# polls once a minute, half a minute out every three seconds.
POLL_FRACTION_OF_WAIT = 0.1
# Jitter: each interval is drawn from base × (1 ± POLL_JITTER_RATIO).
POLL_JITTER_RATIO = 0.2
# Interval used while no wait can be estimated, for example before the first
# admission, so the fan learns within about this long that the sale started.
UNKNOWN_WAIT_POLL_SECONDS = 10.0


class UniformSource(Protocol):
    """A random source with ``uniform``, such as ``random.Random``."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class Position:
    """A fan's place in line, as the queue page shows it."""

    status: str | None  # None until the forwarder numbers the fan
    queue_number: int | None
    serving: int  # highest queue number admitted so far
    people_ahead: int | None  # None until numbered
    my_turn: bool
    sold_out: bool
    purchase_url: str | None
    estimated_wait_seconds: float | None  # None without an admission rate


def people_ahead(queue_number: int, serving: int) -> int:
    """Return the admissions still needed before this fan's turn.

    That is the fan's queue number minus the number being served, this fan's
    own admission included, and never negative.
    """
    return max(queue_number - serving, 0)


def estimated_wait_seconds(ahead: int, admission_rate: float) -> float | None:
    """Return ``ahead`` divided by the admission rate (fans per second).

    Returns ``None`` when the rate is 0 or less: no fan is being admitted, so
    no wait can be estimated.
    """
    if admission_rate <= 0:
        return None
    return ahead / admission_rate


def next_poll_seconds(
    estimated_wait: float | None,
    min_seconds: float = MIN_POLL_SECONDS,
    max_seconds: float = MAX_POLL_SECONDS,
    rng: UniformSource | None = None,
) -> float:
    """Return seconds until the next poll, jittered, between the bounds.

    The base interval is ``POLL_FRACTION_OF_WAIT`` of the estimated wait, or
    ``UNKNOWN_WAIT_POLL_SECONDS`` when there is no estimate, clamped to the
    bounds. The result is drawn uniformly from base × (1 ± 20 %), clamped to
    the bounds again.
    """
    if min_seconds <= 0 or max_seconds < min_seconds:
        raise ValueError(
            f"Poll bounds {min_seconds!r}..{max_seconds!r} s are invalid: the "
            "minimum must be positive and not above the maximum."
        )
    source = rng if rng is not None else random
    if estimated_wait is None:
        base = UNKNOWN_WAIT_POLL_SECONDS
    else:
        base = estimated_wait * POLL_FRACTION_OF_WAIT
    base = _clamp(base, min_seconds, max_seconds)
    low = _clamp(base * (1 - POLL_JITTER_RATIO), min_seconds, max_seconds)
    high = _clamp(base * (1 + POLL_JITTER_RATIO), min_seconds, max_seconds)
    return source.uniform(low, high)


def position(fan: Mapping[str, Any], sale: Mapping[str, Any]) -> Position:
    """Compute the fan's position from its queue item and the sale's item."""
    status = _text(fan.get(schema.STATUS))
    queue_number = _integer(fan.get(schema.QUEUE_NUMBER))
    serving = _integer(sale.get(schema.SERVING)) or 0
    purchase_url = _text(fan.get(schema.PURCHASE_URL))
    sold_out = status == schema.SOLD_OUT or bool(
        _boolean(sale.get(schema.SOLD_OUT_FLAG))
    )
    ahead = None if queue_number is None else people_ahead(queue_number, serving)
    if status in (schema.ADMITTED, *schema.FINAL_STATUSES):
        ahead = 0
    rate = _number(sale.get(schema.ADMISSION_RATE)) or 0.0
    wait = None if ahead is None else estimated_wait_seconds(ahead, rate)
    return Position(
        status=status,
        queue_number=queue_number,
        serving=serving,
        people_ahead=ahead,
        my_turn=status == schema.ADMITTED and purchase_url is not None,
        sold_out=sold_out,
        purchase_url=purchase_url,
        estimated_wait_seconds=wait,
    )


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _plain(value: Any) -> Any:
    # DynamoDB's typed JSON wraps each value in a one-key object.
    if isinstance(value, Mapping) and len(value) == 1:
        kind, inner = next(iter(value.items()))
        if kind == "NULL":
            return None
        if kind in ("N", "S", "BOOL"):
            return inner
    return value


def _number(value: Any) -> float | None:
    plain = _plain(value)
    if plain is None or isinstance(plain, bool):
        return None
    try:
        return float(plain)
    except (TypeError, ValueError):
        return None


def _integer(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def _text(value: Any) -> str | None:
    plain = _plain(value)
    return plain if isinstance(plain, str) and plain else None


def _boolean(value: Any) -> bool | None:
    plain = _plain(value)
    return plain if isinstance(plain, bool) else None
