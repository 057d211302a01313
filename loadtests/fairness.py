"""Count fans admitted out of queue-number order during a load test.

A pair of fans is an inversion when the fan with the higher queue number was
admitted before the fan with the lower one: someone who joined the line later
was served first. Admission times are the window processor's, written on the
fans' items, so one clock orders them all.

Fans report their admissions late and out of order: each learns of its turn
on its next poll, and Locust workers report every few seconds. So admissions
wait in a buffer until they are ``settle_seconds`` older than the newest one
seen, and are then counted in admission-time order.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field

# Admissions closer together than this count as simultaneous, because the
# windows take consecutive fans from the work queue at about the same moment.
# NOTE: a chosen margin, not a measured one.
DEFAULT_TOLERANCE_SECONDS = 1.0
# Far longer than a fan at the front of the line waits between polls plus a
# worker's report interval (3 s). An admission reported after later ones were
# counted is still counted exactly, only with a slower linear scan.
DEFAULT_SETTLE_SECONDS = 30.0


class _CountTree:
    """Fenwick tree over queue numbers, stored sparsely in a dict."""

    SIZE = 1 << 40  # larger than any queue number

    def __init__(self) -> None:
        self._tree: dict[int, int] = {}
        self._total = 0

    def add(self, number: int) -> None:
        self._total += 1
        index = number + 1
        while index < self.SIZE:
            self._tree[index] = self._tree.get(index, 0) + 1
            index += index & -index

    def count_above(self, number: int) -> int:
        index = number + 1
        up_to = 0
        while index > 0:
            up_to += self._tree.get(index, 0)
            index -= index & -index
        return self._total - up_to


@dataclass
class FairnessTracker:
    """Count inversions among one sale's admissions, reported in any order."""

    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    inversions: int = 0
    counted: int = 0
    _pending: list[tuple[float, int]] = field(default_factory=list)
    _newest_seconds: float = float("-inf")
    # Admissions already counted, in time order, and those older than the one
    # being counted by more than the tolerance, in the tree.
    _counted_times: list[tuple[float, int]] = field(default_factory=list)
    _in_tree: int = 0
    _tree: _CountTree = field(default_factory=_CountTree)

    def add(self, queue_number: int, admitted_at: float) -> None:
        """Buffer one admission: the fan's queue number and its admission time."""
        heapq.heappush(self._pending, (admitted_at, queue_number))
        self._newest_seconds = max(self._newest_seconds, admitted_at)

    def settle(self, *, everything: bool = False) -> int:
        """Count the admissions that have settled; return the new inversions."""
        if everything:
            horizon = float("inf")
        else:
            horizon = self._newest_seconds - self.settle_seconds
        found = 0
        while self._pending and self._pending[0][0] <= horizon:
            admitted_at, number = heapq.heappop(self._pending)
            found += self._count(number, admitted_at)
        self.inversions += found
        return found

    def _count(self, number: int, admitted_at: float) -> int:
        if self._counted_times and admitted_at < self._counted_times[-1][0]:
            return self._count_late(number, admitted_at)
        # Every fan admitted more than the tolerance earlier than this one
        # goes into the tree first; those with higher numbers jumped ahead.
        while self._in_tree < len(self._counted_times):
            earlier_at, earlier_number = self._counted_times[self._in_tree]
            if earlier_at >= admitted_at - self.tolerance_seconds:
                break
            self._tree.add(earlier_number)
            self._in_tree += 1
        self._counted_times.append((admitted_at, number))
        self.counted += 1
        return self._tree.count_above(number)

    def _count_late(self, number: int, admitted_at: float) -> int:
        # Reported after later admissions were counted, so compare it with
        # every counted admission. This is linear but rare.
        earliest = admitted_at - self.tolerance_seconds
        latest = admitted_at + self.tolerance_seconds
        jumped_ahead = sum(
            1
            for other_at, other_number in self._counted_times
            if other_number > number and other_at < earliest
        )
        fell_behind = sum(
            1
            for other_at, other_number in self._counted_times
            if other_number < number and other_at > latest
        )
        position = bisect.bisect(self._counted_times, (admitted_at, number))
        self._counted_times.insert(position, (admitted_at, number))
        if position < self._in_tree:
            self._tree.add(number)
            self._in_tree += 1
        self.counted += 1
        return jumped_ahead + fell_behind
