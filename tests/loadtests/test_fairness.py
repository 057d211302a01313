"""Counting fans admitted out of queue-number order."""

from __future__ import annotations

import itertools
import random

import pytest

from loadtests.fairness import FairnessTracker


def count_by_pairs(admissions: list[tuple[int, float]], tolerance: float) -> int:
    """Count inverted pairs the slow, obvious way."""
    inverted = 0
    for first, second in itertools.permutations(admissions, 2):
        (lower, lower_at), (higher, higher_at) = first, second
        if lower < higher and higher_at < lower_at - tolerance:
            inverted += 1
    return inverted


def test_in_order_admissions_have_none() -> None:
    tracker = FairnessTracker(tolerance_seconds=0.0)
    for number in range(1, 1001):
        tracker.add(number, 100.0 + number * 0.01)

    assert tracker.settle(everything=True) == 0
    assert tracker.counted == 1000


def test_one_fan_jumping_the_line() -> None:
    tracker = FairnessTracker(tolerance_seconds=0.0)
    # Fan 10 is admitted before fans 1..9, which come in order afterwards.
    tracker.add(10, 50.0)
    for number in range(1, 10):
        tracker.add(number, 50.0 + number)

    assert tracker.settle(everything=True) == 9


def test_tolerance_ignores_simultaneous_admissions() -> None:
    tracker = FairnessTracker(tolerance_seconds=1.0)
    tracker.add(2, 10.0)
    tracker.add(1, 10.5)  # within a second of fan 2: the windows are parallel
    tracker.add(4, 20.0)
    tracker.add(3, 21.5)  # 1.5 s after fan 4: overtaken

    assert tracker.settle(everything=True) == 1


def test_settle_waits_for_late_reports() -> None:
    tracker = FairnessTracker(tolerance_seconds=0.0, settle_seconds=30.0)
    tracker.add(2, 100.0)
    tracker.add(3, 110.0)

    assert tracker.settle() == 0
    assert tracker.counted == 0  # nothing is 30 s older than the newest yet
    tracker.add(1, 105.0)  # reported late: fan 2 went before it
    tracker.add(4, 140.0)
    assert tracker.settle() == 1
    assert tracker.counted == 3


@pytest.mark.parametrize("settle_seconds", [0.0, 0.5, 3.0, 30.0])
@pytest.mark.parametrize("tolerance", [0.0, 0.5, 1.0])
def test_matches_pairwise_count(settle_seconds: float, tolerance: float) -> None:
    rng = random.Random(f"{settle_seconds}-{tolerance}")
    for _ in range(40):
        admissions = [
            (number, number * 0.1 + rng.uniform(-2.0, 2.0))
            for number in range(rng.randint(0, 80))
        ]
        rng.shuffle(admissions)  # reported in any order
        tracker = FairnessTracker(
            tolerance_seconds=tolerance, settle_seconds=settle_seconds
        )
        found = 0
        for number, admitted_at in admissions:
            tracker.add(number, admitted_at)
            found += tracker.settle()
        found += tracker.settle(everything=True)

        assert found == count_by_pairs(admissions, tolerance)
        assert tracker.inversions == found
        assert tracker.counted == len(admissions)
