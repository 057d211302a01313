"""Per-second time series and latency histograms, mergeable across processes.

Each Locust process counts events into whole seconds from the start of the
run and rounds latencies into buckets of two significant digits, the way
Locust's own statistics do. Workers send what they collected since the last
message, and the master adds it up.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

# Series that are counts of events per second.
ARRIVALS = "arrivals"
JOINS = "joins"
NUMBERED = "numbered"  # fans who saw their queue number for the first time
ADMISSIONS = "admissions"  # fans who saw their purchase URL
ORDERS = "orders"
TICKETS = "tickets"
SOLD_OUT = "told_sold_out"
POLL_REQUESTS = "poll_requests"
# Gauges, sampled once a second by each process and summed across processes.
WAITING = "waiting"
IN_LINE = "in_line"  # joined and not yet finished: waiting or at a window

Histogram = dict[int, int]


def bucket(milliseconds: float) -> int:
    """Round a latency to two significant digits, as Locust rounds its stats."""
    value = max(round(milliseconds), 0)
    if value < 100:
        return value
    digits = int(math.log10(value)) - 1
    return int(round(value, -digits))


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """Return the latency below which ``fraction`` of the samples fall."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def merge_histograms(histograms: Iterable[Mapping[int, int]]) -> Histogram:
    """Return the sum of several histograms."""
    total: Histogram = defaultdict(int)
    for histogram in histograms:
        for value, count in histogram.items():
            total[int(value)] += count
    return dict(total)


class Series:
    """Counts per second, gauges, and latency histograms per request name.

    A gauge keeps the last value each process reported for a second. The
    total of a second is the sum over processes, and a process that skipped
    a second counts with its previous value.
    """

    def __init__(self) -> None:
        self.counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.latency: dict[str, dict[int, Histogram]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        # process -> gauge name -> second -> value
        self.gauges: dict[str, dict[str, dict[int, int]]] = defaultdict(
            lambda: defaultdict(dict)
        )

    def count(self, name: str, second: int, amount: int = 1) -> None:
        self.counts[name][second] += amount

    def gauge(self, name: str, second: int, value: int, source: str = "") -> None:
        self.gauges[source][name][second] = value

    def gauge_totals(self, name: str) -> dict[int, int]:
        """Return the gauge summed over processes, for every second seen."""
        seconds = sorted(
            {s for gauges in self.gauges.values() for s in gauges.get(name, {})}
        )
        totals: dict[int, int] = dict.fromkeys(seconds, 0)
        for gauges in self.gauges.values():
            values = gauges.get(name, {})
            last = 0
            for second in seconds:
                last = values.get(second, last)
                totals[second] += last
        return totals

    def observe(self, name: str, second: int, milliseconds: float) -> None:
        self.latency[name][second][bucket(milliseconds)] += 1

    def drain(self) -> dict[str, Any]:
        """Return what was collected since the last drain, as plain JSON data."""
        data = {
            "counts": {
                name: {str(s): n for s, n in seconds.items()}
                for name, seconds in self.counts.items()
            },
            "latency": {
                name: {
                    str(s): {str(v): c for v, c in hist.items()}
                    for s, hist in seconds.items()
                }
                for name, seconds in self.latency.items()
            },
            "gauges": {
                name: {str(s): v for s, v in seconds.items()}
                for name, seconds in self.gauges.get("", {}).items()
            },
        }
        self.counts.clear()
        self.latency.clear()
        self.gauges.clear()
        return data

    def add(self, data: Mapping[str, Any], source: str = "") -> None:
        """Add a drained delta from the process named ``source``."""
        for name, seconds in data.get("gauges", {}).items():
            for second, value in seconds.items():
                self.gauges[source][name][int(second)] = int(value)
        for name, seconds in data.get("counts", {}).items():
            for second, amount in seconds.items():
                self.counts[name][int(second)] += int(amount)
        for name, seconds in data.get("latency", {}).items():
            for second, hist in seconds.items():
                target = self.latency[name][int(second)]
                for value, count in hist.items():
                    target[int(value)] += int(count)

    def to_json(self) -> dict[str, Any]:
        """Return the whole series without clearing it."""
        counts = {
            name: {str(s): n for s, n in sorted(seconds.items())}
            for name, seconds in self.counts.items()
        }
        latency = {
            name: {
                str(s): {str(v): c for v, c in sorted(hist.items())}
                for s, hist in sorted(seconds.items())
            }
            for name, seconds in self.latency.items()
        }
        gauges = {
            name: {str(s): v for s, v in self.gauge_totals(name).items()}
            for name in {n for g in self.gauges.values() for n in g}
        }
        return {"counts": counts, "latency": latency, "gauges": gauges}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Series:
        """Read a whole series written by ``to_json`` (gauges already summed)."""
        series = cls()
        series.add(data)
        return series
