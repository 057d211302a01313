"""The queue-specific measures of a spike run, from the fans and the stack.

Every measure has a name with its unit, the name the thresholds file uses.
Times the fans saw (join, purchase) come from the fans' records. Times the
stack decided (numbering, admission) come from the stack's tables, and so
does every count that must add up (tickets sold, orders per fan).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests import fans as outcomes
from loadtests.arrivals import NEVER_OPEN
from loadtests.plan import ABANDONER, BOT, REFRESHER, SpikePlan
from loadtests.truth import FanTruth, StackTruth
from system import schema

# An abandoned window counts as not reclaimed only once this long has passed
# after its claim deadline, so the window processor's loop had time to act.
RECLAIM_GRACE_SECONDS = 10.0
# Outcomes of a waiting fan who was told where it stands.
RESOLVED_OUTCOMES = frozenset(
    {
        outcomes.PURCHASED,
        outcomes.SOLD_OUT,
        outcomes.WINDOW_CLOSED,
        outcomes.EXPIRED,
        outcomes.PURCHASE_FAILED,
        outcomes.LEFT_AT_WINDOW,
    }
)
LEFT_OUTCOMES = frozenset({outcomes.LEFT_WAITING, outcomes.LEFT_AT_WINDOW})

Value = float | int | None

# Every measure, with what it means; the thresholds file may use any of them.
DESCRIPTIONS: dict[str, str] = {
    "fans_planned": "fans the arrival profile sends",
    "fans_arrived": "fans that arrived, bots included",
    "fans_joined": "fans (not bots) whose join write succeeded",
    "fans_admitted": "fans of this run the stack admitted to a window",
    "join_latency_p50_seconds": "arrival to join written: GetId, credentials, PutItem",
    "join_latency_p95_seconds": "arrival to join written, 95th percentile",
    "join_latency_p99_seconds": "arrival to join written, 99th percentile",
    "time_to_number_p50_seconds": "join to queue number (stack's numbered_at)",
    "time_to_number_p95_seconds": "join to queue number, 95th percentile",
    "time_to_number_p99_seconds": "join to queue number, 99th percentile",
    "time_in_queue_p50_seconds": "join to admission (stack's admitted_at)",
    "time_in_queue_p95_seconds": "join to admission, 95th percentile",
    "time_in_queue_p99_seconds": "join to admission, 99th percentile",
    "time_in_queue_max_seconds": "join to admission, longest",
    "my_turn_delay_p50_seconds": "admission to the fan's poll that saw it",
    "my_turn_delay_p95_seconds": "admission to the fan seeing it, 95th percentile",
    "my_turn_delay_p99_seconds": "admission to the fan seeing it, 99th percentile",
    "purchase_latency_p50_seconds": "POST /api/purchase, from when it was due",
    "purchase_latency_p95_seconds": "POST /api/purchase, 95th percentile",
    "purchase_latency_p99_seconds": "POST /api/purchase, 99th percentile",
    "position_samples": "polls sampled to check the people-ahead shown",
    "position_error_p50_people": "|people ahead shown - actual|, median",
    "position_error_p95_people": "|people ahead shown - actual|, 95th percentile",
    "fairness_inversions": "pairs of fans admitted against queue-number order",
    "fairness_inversion_ratio": "inversions / all pairs of admitted fans",
    "fairness_max_early_places": "most places a fan was admitted before its turn",
    "stock": "tickets on sale",
    "tickets_sold": "tickets in the sale's orders in DynamoDB",
    "orders": "orders in DynamoDB, synthetic ones left out",
    "tickets_sold_seen_by_fans": "tickets the fans were told they bought",
    "oversold_tickets": "tickets sold beyond the stock",
    "sold_mismatch_tickets": "|tickets in DynamoDB - tickets fans were told|",
    "tickets_left_mismatch": "|stock - sold - the sale's tickets_left counter|",
    "double_purchases": "fans with more than one order, or two tabs that both bought",
    "bot_tickets": "orders that bots obtained",
    "lost_fans": "fans who stayed but were never admitted or told sold out",
    "never_numbered_fans": "joined fans without a queue number at the end",
    "join_failures": "fans whose join failed after retries",
    "abandoned_windows": "windows admitted to fans who never opened their URL",
    "windows_reclaimed": "windows the processor took back (the sale's counter)",
    "unreclaimed_windows": "abandoned windows still held well past their claim time",
    "poll_requests_per_waiting_fan_minute": "poll requests per minute of waiting",
    "refreshers_lost_place": "fans whose page reload cost them their place",
    "requests": "requests sent by the fans",
    "request_failures": "requests Locust counted as failed",
    "request_error_ratio": "failed requests / all requests",
    "cpu_warnings": "1 if Locust warned that a load generator ran above 90 % CPU",
    "cpu_max_percent": "highest CPU use of a Locust process",
    "users_reached_ratio": "Locust users running / users requested",
    "fans_arrived_ratio": "fans that arrived / fans the profile planned",
    "arrival_lag_p99_seconds": "lateness of fan arrivals, 99th percentile",
    "arrival_lag_max_seconds": "lateness of fan arrivals, worst",
    "loop_lag_p99_seconds": "lateness of the event loop's 100 ms tick, 99th pct",
    "workers_done_ratio": "Locust processes that reported their fans / expected",
}


@dataclass
class RunMeasures:
    """Measured values by name, and the data behind the report's charts."""

    values: dict[str, Value] = field(default_factory=dict)
    time_in_queue_seconds: list[float] = field(default_factory=list)
    admission_order: list[tuple[int, int]] = field(default_factory=list)
    position_pairs: list[tuple[int, int]] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)


def measure(
    plan: SpikePlan,
    fans: Sequence[dict[str, Any]],
    positions: Iterable[Sequence[float]],
    truth: StackTruth,
    generator: dict[str, Any],
    run_ended_at: float,
) -> RunMeasures:
    """Compute every measure of the run."""
    result = RunMeasures()
    values = result.values
    people = [fan for fan in fans if fan["behaviour"] != BOT]
    joined = [fan for fan in people if fan["joined_at"] is not None]
    result.outcomes = dict(Counter(str(fan["outcome"]) for fan in fans))
    values["fans_planned"] = sum(h["planned"] for h in generator.get("workers", []))
    values["fans_arrived"] = len(fans)
    values["fans_joined"] = len(joined)

    values.update(_latencies(joined, truth))
    result.time_in_queue_seconds = _time_in_queue(joined, truth)
    values.update(_percentiles("time_in_queue", result.time_in_queue_seconds))
    values["time_in_queue_max_seconds"] = max(
        result.time_in_queue_seconds, default=None
    )

    fairness, result.admission_order = _fairness(truth, {f["fan_id"] for f in joined})
    values.update(fairness)
    errors, result.position_pairs = _position_errors(positions, truth)
    values.update(errors)
    values.update(_sales(plan, fans, truth))
    values.update(_lost(joined, truth))
    values["join_failures"] = sum(
        1 for fan in people if fan["outcome"] == outcomes.JOIN_FAILED
    )
    values.update(_reclaimed(plan, joined, truth, run_ended_at))
    values["poll_requests_per_waiting_fan_minute"] = _poll_rate(joined, run_ended_at)
    values["refreshers_lost_place"] = sum(
        1
        for fan in joined
        if fan["behaviour"] == REFRESHER and fan["place_kept"] is False
    )
    values.update(_requests(generator))
    return result


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the value below which ``fraction`` of ``values`` fall (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def count_inversions(sequence: Sequence[int]) -> int:
    """Return the number of pairs that stand in the wrong order (merge sort)."""

    def sort(items: list[int]) -> tuple[list[int], int]:
        if len(items) <= 1:
            return items, 0
        middle = len(items) // 2
        left, left_count = sort(items[:middle])
        right, right_count = sort(items[middle:])
        merged: list[int] = []
        count = left_count + right_count
        i = j = 0
        while i < len(left) and j < len(right):
            if left[i] <= right[j]:
                merged.append(left[i])
                i += 1
            else:
                merged.append(right[j])
                count += len(left) - i
                j += 1
        merged.extend(left[i:])
        merged.extend(right[j:])
        return merged, count

    return sort(list(sequence))[1]


def _percentiles(name: str, values: Sequence[float]) -> dict[str, Value]:
    return {
        f"{name}_p50_seconds": percentile(values, 0.50),
        f"{name}_p95_seconds": percentile(values, 0.95),
        f"{name}_p99_seconds": percentile(values, 0.99),
    }


def _latencies(joined: Sequence[dict[str, Any]], truth: StackTruth) -> dict[str, Value]:
    joins = [fan["join_ms"] / 1000 for fan in joined if fan["join_ms"] is not None]
    buys = [fan["buy_ms"] / 1000 for fan in joined if fan["buy_ms"] is not None]
    numbered = []
    turn_delays = []
    for fan in joined:
        stack = truth.fans.get(fan["fan_id"])
        if stack is None:
            continue
        if stack.numbered_at is not None:
            numbered.append(max(stack.numbered_at - fan["joined_at"], 0.0))
        if stack.admitted_at is not None and fan["admitted_seen_at"] is not None:
            turn_delays.append(max(fan["admitted_seen_at"] - stack.admitted_at, 0.0))
    values: dict[str, Value] = {}
    values.update(_percentiles("join_latency", joins))
    values.update(_percentiles("time_to_number", numbered))
    values.update(_percentiles("purchase_latency", buys))
    values.update(_percentiles("my_turn_delay", turn_delays))
    return values


def _time_in_queue(joined: Sequence[dict[str, Any]], truth: StackTruth) -> list[float]:
    waits = []
    for fan in joined:
        stack = truth.fans.get(fan["fan_id"])
        if stack is not None and stack.admitted_at is not None:
            waits.append(max(stack.admitted_at - fan["joined_at"], 0.0))
    return waits


def _admitted_in_order(truth: StackTruth, fan_ids: set[str]) -> list[FanTruth]:
    admitted = [
        fan
        for fan in truth.fans.values()
        if fan.fan_id in fan_ids
        and fan.admitted_at is not None
        and fan.queue_number is not None
    ]
    return sorted(admitted, key=lambda fan: (fan.admitted_at, fan.queue_number))


def _fairness(
    truth: StackTruth, fan_ids: set[str]
) -> tuple[dict[str, Value], list[tuple[int, int]]]:
    """Count admissions out of queue-number order, and how far out of order."""
    admitted = _admitted_in_order(truth, fan_ids)
    numbers = [int(fan.queue_number or 0) for fan in admitted]
    pairs = len(numbers) * (len(numbers) - 1) // 2
    inversions = count_inversions(numbers)
    rank = {number: index for index, number in enumerate(sorted(numbers))}
    early = [rank[number] - order for order, number in enumerate(numbers)]
    values: dict[str, Value] = {
        "fans_admitted": len(numbers),
        "fairness_inversions": inversions,
        "fairness_inversion_ratio": inversions / pairs if pairs else None,
        "fairness_max_early_places": max(early, default=None),
    }
    scatter = [(number, order + 1) for order, number in enumerate(numbers)]
    return values, scatter


def _position_errors(
    positions: Iterable[Sequence[float]], truth: StackTruth
) -> tuple[dict[str, Value], list[tuple[int, int]]]:
    """Compare the people-ahead a fan was shown with the line at that moment.

    The actual number is the fans with this queue number or a lower one who
    had not been admitted at the time of the poll, the fan itself included.
    That is what "queue number minus now serving" shows when admissions go in
    order and the counters are fresh.
    """
    numbers = sorted(
        fan.queue_number for fan in truth.fans.values() if fan.queue_number is not None
    )
    admissions = sorted(
        (fan.admitted_at, fan.queue_number)
        for fan in truth.fans.values()
        if fan.admitted_at is not None and fan.queue_number is not None
    )
    samples = sorted((float(t), int(n), int(a)) for t, n, a in positions)
    tree = _Fenwick(len(numbers))
    errors: list[float] = []
    pairs: list[tuple[int, int]] = []
    next_admission = 0
    for at, number, shown in samples:
        while next_admission < len(admissions) and admissions[next_admission][0] <= at:
            admitted_number = admissions[next_admission][1]
            tree.add(bisect.bisect_left(numbers, admitted_number), 1)
            next_admission += 1
        upto = bisect.bisect_right(numbers, number)
        actual = upto - tree.total(upto)
        errors.append(abs(shown - actual))
        pairs.append((shown, actual))
    values: dict[str, Value] = {
        "position_samples": len(errors),
        "position_error_p50_people": percentile(errors, 0.50),
        "position_error_p95_people": percentile(errors, 0.95),
    }
    return values, pairs


def _sales(
    plan: SpikePlan, fans: Sequence[dict[str, Any]], truth: StackTruth
) -> dict[str, Value]:
    seen = sum(int(fan["bought"]) for fan in fans if fan["behaviour"] != BOT)
    sold = truth.tickets_sold
    orders_per_fan = Counter(
        order.fan_id for order in truth.orders if not order.synthetic
    )
    bot_ids = {
        fan["fan_id"] for fan in fans if fan["behaviour"] == BOT and fan["fan_id"]
    }
    bot_orders = sum(
        count for fan_id, count in orders_per_fan.items() if fan_id in bot_ids
    )
    bot_seen = sum(1 for fan in fans if fan["outcome"] == outcomes.BOT_TICKET)
    return {
        "stock": truth.stock or plan.stock,
        "tickets_sold": sold,
        "orders": sum(orders_per_fan.values()),
        "tickets_sold_seen_by_fans": seen,
        "oversold_tickets": max(sold - (truth.stock or plan.stock), 0),
        "sold_mismatch_tickets": abs(sold - seen),
        "tickets_left_mismatch": abs((truth.stock - sold) - truth.tickets_left),
        "double_purchases": sum(1 for n in orders_per_fan.values() if n > 1)
        + sum(1 for fan in fans if fan["double_buy"]),
        "bot_tickets": max(bot_orders, bot_seen),
    }


def _lost(joined: Sequence[dict[str, Any]], truth: StackTruth) -> dict[str, Value]:
    """Count fans who stayed but were never numbered, admitted or told sold out."""
    lost = 0
    never_numbered = 0
    for fan in joined:
        stack = truth.fans.get(fan["fan_id"])
        if stack is None or stack.queue_number is None:
            never_numbered += 1
        if fan["outcome"] in LEFT_OUTCOMES:
            continue
        admitted = fan["admitted_seen_at"] is not None or (
            stack is not None and stack.admitted_at is not None
        )
        if not admitted and fan["outcome"] not in RESOLVED_OUTCOMES:
            lost += 1
    return {"lost_fans": lost, "never_numbered_fans": never_numbered}


def _reclaimed(
    plan: SpikePlan,
    joined: Sequence[dict[str, Any]],
    truth: StackTruth,
    run_ended_at: float,
) -> dict[str, Value]:
    """Count abandoned windows, and those still held past their claim deadline."""
    abandoned = 0
    unreclaimed = 0
    for fan in joined:
        if fan["behaviour"] != ABANDONER or fan["variant"] != NEVER_OPEN:
            continue
        stack = truth.fans.get(fan["fan_id"])
        if stack is None or stack.admitted_at is None:
            continue
        abandoned += 1
        deadline = stack.admitted_at + plan.claim_timeout_seconds
        if deadline + RECLAIM_GRACE_SECONDS < run_ended_at and stack.status in (
            schema.ADMITTED,
            None,
        ):
            unreclaimed += 1
    return {
        "abandoned_windows": abandoned,
        "windows_reclaimed": truth.reclaimed_windows,
        "unreclaimed_windows": unreclaimed,
    }


def _poll_rate(joined: Sequence[dict[str, Any]], run_ended_at: float) -> Value:
    """Return poll requests per minute of waiting, over all waiting fans."""
    requests = 0
    minutes = 0.0
    for fan in joined:
        end = fan["admitted_seen_at"] or fan["finished_at"] or run_ended_at
        minutes += max(end - fan["joined_at"], 0.0) / 60
        requests += int(fan["poll_requests"])
    return requests / minutes if minutes > 0 else None


def _requests(generator: dict[str, Any]) -> dict[str, Value]:
    workers = generator.get("workers", [])
    requests = sum(int(w.get("requests", 0)) for w in workers)
    failures = sum(int(w.get("failures", 0)) for w in workers)
    return {
        "requests": requests,
        "request_failures": failures,
        "request_error_ratio": failures / requests if requests else None,
    }


def generator_health(generator: dict[str, Any]) -> dict[str, Value]:
    """Return the load generator's health measures, which decide validity."""
    workers = generator.get("workers", [])
    planned = sum(int(w.get("planned", 0)) for w in workers)
    arrived = sum(int(w.get("arrived", 0)) for w in workers)
    requested = int(generator.get("users_requested", 0))
    expected = int(generator.get("workers_expected", 0))

    def worst(key: str, stat: str) -> float | None:
        found = [float(w[key][stat]) for w in workers if key in w]
        return max(found) if found else None

    return {
        "cpu_warnings": int(bool(generator.get("cpu_warning"))),
        "cpu_max_percent": generator.get("cpu_max_percent"),
        "users_reached_ratio": (
            int(generator.get("users_reached", 0)) / requested if requested else None
        ),
        "fans_arrived_ratio": arrived / planned if planned else None,
        "arrival_lag_p99_seconds": worst("arrival_lag_seconds", "p99"),
        "arrival_lag_max_seconds": worst("arrival_lag_seconds", "max"),
        "loop_lag_p99_seconds": worst("loop_lag_seconds", "p99"),
        "workers_done_ratio": (
            int(generator.get("workers_done", 0)) / expected if expected else 0.0
        ),
    }


class _Fenwick:
    """Prefix sums over positions 0..size-1, for counting admitted numbers."""

    def __init__(self, size: int) -> None:
        self._tree = [0] * (size + 1)

    def add(self, index: int, amount: int) -> None:
        index += 1
        while index < len(self._tree):
            self._tree[index] += amount
            index += index & -index

    def total(self, upto: int) -> int:
        """Return the sum over positions 0..upto-1."""
        result = 0
        while upto > 0:
            result += self._tree[upto]
            upto -= upto & -upto
        return result
