"""Percentiles and rounding for benchmark figures."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile (``fraction`` in 0..1), or None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float | int | None]:
    """Return count, p50, p90, p99 and max of latencies, in seconds."""
    return {
        "count": len(seconds),
        "p50_seconds": _round(percentile(seconds, 0.50)),
        "p90_seconds": _round(percentile(seconds, 0.90)),
        "p99_seconds": _round(percentile(seconds, 0.99)),
        "max_seconds": _round(max(seconds) if seconds else None),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
