"""Measures of a run, from made-up fans and stack records with known answers."""

from __future__ import annotations

from typing import Any

import pytest

from loadtests import fans as outcomes
from loadtests.arrivals import NEVER_OPEN
from loadtests.measures import (
    count_inversions,
    generator_health,
    measure,
    percentile,
)
from loadtests.plan import ABANDONER, BOT, PATIENT, REFRESHER, SpikePlan, Targets
from loadtests.series import Series, bucket
from loadtests.series import percentile as histogram_percentile
from loadtests.truth import FanTruth, OrderTruth, StackTruth

START = 1_800_000_000.0
PLAN = SpikePlan(
    sale_id="s",
    targets=Targets("us-east-1", "pool", "queue", "sales"),
    stock=10,
    claim_timeout_seconds=10,
)
GENERATOR = {
    "workers_expected": 1,
    "workers_done": 1,
    "users_requested": 1,
    "users_reached": 1,
    "cpu_warning": False,
    "workers": [
        {
            "planned": 5,
            "arrived": 5,
            "requests": 100,
            "failures": 2,
            "arrival_lag_seconds": {"p50": 0.001, "p99": 0.02, "max": 0.05},
            "loop_lag_seconds": {"p50": 0.001, "p99": 0.01, "max": 0.02},
        }
    ],
}


def fan(index: int, behaviour: str = PATIENT, **fields: Any) -> dict[str, Any]:
    record = {
        "arrival_id": index,
        "behaviour": behaviour,
        "variant": 0,
        "fan_id": f"fan-{index}",
        "due_at": START + index,
        "arrived_at": START + index,
        "joined_at": START + index + 0.5,
        "join_ms": 500.0,
        "queue_number": index + 1,
        "numbered_seen_at": None,
        "admitted_seen_at": None,
        "finished_at": START + 100,
        "tickets": 2,
        "bought": 0,
        "buy_ms": None,
        "polls": 3,
        "poll_requests": 6,
        "place_kept": None,
        "double_buy": False,
        "outcome": outcomes.SOLD_OUT,
        "error": None,
    }
    record.update(fields)
    return record


def stack_fan(index: int, admitted_at: float | None, **fields: Any) -> FanTruth:
    values: dict[str, Any] = {
        "fan_id": f"fan-{index}",
        "queue_number": index + 1,
        "status": "admitted" if admitted_at else "waiting",
        "numbered_at": START + index + 1.5,
        "admitted_at": admitted_at,
        "finished_at": None,
        "synthetic": False,
    }
    values.update(fields)
    return FanTruth(**values)


def truth(fans: list[FanTruth], orders: list[OrderTruth], **fields: Any) -> StackTruth:
    values: dict[str, Any] = {
        "sale_id": "s",
        "stock": 10,
        "tickets_left": 10 - sum(o.quantity for o in orders),
        "sold_out": False,
        "reclaimed_windows": 1,
        "admitted_count": 0,
    }
    values.update(fields)
    return StackTruth(**values, fans={f.fan_id: f for f in fans}, orders=orders)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 1.0) == 100
    assert percentile([], 0.5) is None


def test_inversions_count_pairs_out_of_order() -> None:
    assert count_inversions([1, 2, 3]) == 0
    assert count_inversions([3, 2, 1]) == 3
    assert count_inversions([2, 1, 4, 3, 5]) == 2


def test_histogram_buckets_and_percentiles() -> None:
    assert bucket(57.4) == 57
    assert bucket(1234) == 1200
    assert bucket(-3) == 0
    assert histogram_percentile({10: 90, 500: 10}, 0.95) == 500
    assert histogram_percentile({}, 0.5) is None


def test_series_merges_drained_deltas() -> None:
    worker = Series()
    worker.count("joins", 3, 2)
    worker.observe("join", 3, 42)
    master = Series()
    master.add(worker.drain())
    worker.count("joins", 3)
    master.add(worker.drain())
    assert master.counts["joins"][3] == 3
    assert master.latency["join"][3] == {42: 1}
    assert Series.from_json(master.to_json()).counts["joins"][3] == 3


def test_gauges_sum_processes_and_carry_forward() -> None:
    series = Series()
    one, two = Series(), Series()
    one.gauge("waiting", 0, 5)
    one.gauge("waiting", 0, 7)  # a second sampled twice keeps the last value
    one.gauge("waiting", 2, 9)
    two.gauge("waiting", 0, 1)
    two.gauge("waiting", 1, 2)
    series.add(one.drain(), source="1")
    series.add(two.drain(), source="2")
    assert series.gauge_totals("waiting") == {0: 8, 1: 9, 2: 11}
    again = Series.from_json(series.to_json())
    assert again.gauge_totals("waiting") == {0: 8, 1: 9, 2: 11}


def test_run_measures_from_fans_and_truth() -> None:
    # Five fans in line; fans 0, 1 and 2 admitted, fan 1 before fan 0.
    records = [
        fan(
            0, admitted_seen_at=START + 21, bought=2, buy_ms=300.0, outcome="purchased"
        ),
        fan(
            1,
            admitted_seen_at=START + 20.5,
            bought=3,
            buy_ms=100.0,
            outcome="purchased",
        ),
        fan(
            2,
            ABANDONER,
            variant=NEVER_OPEN,
            admitted_seen_at=START + 22,
            outcome=outcomes.LEFT_AT_WINDOW,
        ),
        fan(3, REFRESHER, place_kept=False, outcome=outcomes.UNRESOLVED),
        fan(4, BOT, joined_at=None, join_ms=None, outcome=outcomes.BOT_DENIED),
    ]
    stack = truth(
        [
            stack_fan(0, START + 20.5),
            stack_fan(1, START + 20.0),
            stack_fan(2, START + 21.0, status="admitted"),
            stack_fan(3, None),
        ],
        [OrderTruth("o0", "fan-0", 2, False), OrderTruth("o1", "fan-1", 3, False)],
    )
    positions = [
        (START + 10, 4, 4),  # nobody admitted yet: 4 ahead, shown 4
        (START + 20.8, 4, 1),  # fans 1 and 2 admitted: actually 2 ahead
    ]
    result = measure(PLAN, records, positions, stack, GENERATOR, START + 60)
    values = result.values
    assert values["fans_joined"] == 4
    assert values["fans_admitted"] == 3
    assert values["tickets_sold"] == 5
    assert values["tickets_sold_seen_by_fans"] == 5
    assert values["sold_mismatch_tickets"] == 0
    assert values["oversold_tickets"] == 0
    assert values["tickets_left_mismatch"] == 0
    assert values["fairness_inversions"] == 1
    assert values["fairness_max_early_places"] == 1
    assert values["position_error_p95_people"] == 1
    assert values["lost_fans"] == 1  # the refresher still waiting at the end
    assert values["refreshers_lost_place"] == 1
    assert values["abandoned_windows"] == 1
    assert values["unreclaimed_windows"] == 1  # still "admitted" 39 s later
    assert values["time_to_number_p50_seconds"] == pytest.approx(1.0)
    assert values["bot_tickets"] == 0
    assert values["request_error_ratio"] == pytest.approx(0.02)
    assert result.admission_order == [(2, 1), (1, 2), (3, 3)]
    assert sorted(result.time_in_queue_seconds) == pytest.approx([18.5, 18.5, 20.0])


def test_oversell_bots_and_double_orders_are_counted() -> None:
    records = [
        fan(0, admitted_seen_at=START + 5, bought=4, outcome="purchased"),
        fan(1, BOT, outcome=outcomes.BOT_TICKET, bought=4),
    ]
    stack = truth(
        [stack_fan(0, START + 4)],
        [
            OrderTruth("o0", "fan-0", 4, False),
            OrderTruth("o1", "fan-0", 4, False),
            OrderTruth("o2", "fan-1", 4, False),
            OrderTruth("syn", "canary", 4, True),
        ],
        tickets_left=0,
    )
    values = measure(PLAN, records, [], stack, GENERATOR, START + 60).values
    assert values["tickets_sold"] == 12
    assert values["oversold_tickets"] == 2
    assert values["double_purchases"] == 1
    assert values["bot_tickets"] == 1
    assert values["sold_mismatch_tickets"] == 8
    assert values["tickets_left_mismatch"] == 2


def test_generator_health_flags_a_starved_generator() -> None:
    starved = dict(GENERATOR, cpu_warning=True, users_reached=0, workers_done=0)
    starved["workers"] = [dict(GENERATOR["workers"][0], arrived=4)]
    health = generator_health(starved)
    assert health["cpu_warnings"] == 1
    assert health["users_reached_ratio"] == 0
    assert health["fans_arrived_ratio"] == pytest.approx(0.8)
    assert health["workers_done_ratio"] == 0
    assert health["arrival_lag_p99_seconds"] == pytest.approx(0.02)
