"""The spike plan, its options and the arrival schedules built from it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from loadtests.arrivals import (
    TOUR_2022_SHOW_UP_RATIO,
    arrivals_per_second,
    build_schedule,
    share,
    ticket_weights,
    tour_2022_fans,
    tour_2022_stock,
)
from loadtests.errors import SpikeConfigError
from loadtests.plan import (
    BEHAVIOURS,
    BOT,
    CSV,
    LATE,
    PATIENT,
    PRESALE,
    SpikePlan,
    Targets,
    parse_mix,
    parse_ticket_range,
    read_arrivals_csv,
)

TARGETS = Targets(
    region="us-east-1",
    identity_pool_id="us-east-1:pool",
    queue_table="queue",
    sales_table="sales",
    endpoint_url="http://127.0.0.1:4566",
)


def make_plan(**fields: object) -> SpikePlan:
    fields.setdefault("sale_id", "test")
    fields.setdefault("targets", TARGETS)
    return SpikePlan(**fields)


def test_mix_parses_weights_and_fills_missing() -> None:
    mix = parse_mix("patient=3,bot=1")
    assert mix[PATIENT] == 3
    assert mix[BOT] == 1
    assert set(mix) == set(BEHAVIOURS)
    assert mix[LATE] == 0


@pytest.mark.parametrize(
    "text", ["patient", "nobody=3", "patient=x", "patient=-1", "patient=0"]
)
def test_mix_rejects_invalid_entries(text: str) -> None:
    with pytest.raises(SpikeConfigError):
        parse_mix(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("1-4", (1, 4)), ("2", (2, 2)), ("3-3", (3, 3))]
)
def test_ticket_range_parses(text: str, expected: tuple[int, int]) -> None:
    assert parse_ticket_range(text) == expected


@pytest.mark.parametrize("text", ["0-4", "4-1", "a-b", ""])
def test_ticket_range_rejects(text: str) -> None:
    with pytest.raises(SpikeConfigError):
        parse_ticket_range(text)


def test_ticket_weights_reach_the_mean() -> None:
    weights = ticket_weights(1, 4, 3.0)
    mean = sum(k * w for k, w in zip(range(1, 5), weights, strict=True))
    assert mean == pytest.approx(3.0, abs=1e-6)
    assert sum(weights) == pytest.approx(1.0)
    assert weights == sorted(weights), "a mean of 3 over 1..4 leans to 4"


def test_plan_round_trips_through_json() -> None:
    plan = make_plan(fans=50, arrivals_per_second=(), start_at=12.5)
    assert SpikePlan.from_json(plan.to_json()) == plan


def test_plan_rejects_cap_before_last_arrival() -> None:
    with pytest.raises(SpikeConfigError, match="duration cap"):
        make_plan(presale_seconds=30, spike_seconds=10, duration_cap_seconds=40)


def test_plan_rejects_unknown_json_fields() -> None:
    text = make_plan().to_json().replace('"fans"', '"crowd"')
    with pytest.raises(SpikeConfigError, match="unknown fields"):
        SpikePlan.from_json(text)


def test_arrivals_csv_reads_counts(tmp_path: Path) -> None:
    path = tmp_path / "arrivals.csv"
    path.write_text("second,fans\n0,5\n2,10\n\n3,1\n")
    assert read_arrivals_csv(path) == (5, 0, 10, 1)


@pytest.mark.parametrize("body", ["", "second,fans\n", "0,5\n0,6\n", "0,-1\n", "x\n1"])
def test_arrivals_csv_rejects(tmp_path: Path, body: str) -> None:
    path = tmp_path / "arrivals.csv"
    path.write_text(body)
    with pytest.raises(SpikeConfigError):
        read_arrivals_csv(path)


def test_schedule_is_repeatable_for_a_seed() -> None:
    plan = make_plan(fans=500, seed=7)
    assert build_schedule(plan) == build_schedule(plan)
    other = build_schedule(make_plan(fans=500, seed=8))
    assert build_schedule(plan) != other


def test_presale_schedule_shape() -> None:
    plan = make_plan(
        profile=PRESALE,
        fans=2000,
        presale_share=0.25,
        presale_seconds=20,
        spike_seconds=10,
        mix={PATIENT: 90, LATE: 10},
    )
    schedule = build_schedule(plan)
    assert len(schedule) == 2000
    offsets = [a.offset_seconds for a in schedule]
    assert offsets == sorted(offsets)
    late = [a for a in schedule if a.behaviour == LATE]
    assert all(30 <= a.offset_seconds < 40 for a in late)
    early = [a for a in schedule if a.behaviour != LATE and a.offset_seconds < 20]
    # 25 % of the non-late fans wait before the on-sale second.
    assert len(early) == pytest.approx(0.25 * (2000 - len(late)), rel=0.15)
    spike = [a for a in schedule if a.behaviour != LATE and a.offset_seconds >= 20]
    assert all(a.offset_seconds < 30 for a in spike)
    mean_tickets = sum(a.tickets for a in schedule) / len(schedule)
    assert mean_tickets == pytest.approx(3.0, abs=0.1)


def test_csv_schedule_follows_counts() -> None:
    plan = make_plan(
        profile=CSV,
        fans=16,
        arrivals_per_second=(5, 0, 10, 1),
        presale_seconds=0,
        duration_cap_seconds=60,
    )
    assert arrivals_per_second(build_schedule(plan)) == [5, 0, 10, 1]


def test_shares_partition_the_schedule() -> None:
    schedule = build_schedule(make_plan(fans=301))
    parts = [share(schedule, worker, 3) for worker in range(3)]
    ids = Counter(a.arrival_id for part in parts for a in part)
    assert len(ids) == 301
    assert set(ids.values()) == {1}


def test_tour_2022_scales_published_figures() -> None:
    assert tour_2022_fans(7500) == round(7500 * TOUR_2022_SHOW_UP_RATIO)
    # 3,000 fans, 5 % bots, 3 tickets each, demand 20 times the stock.
    assert tour_2022_stock(3000, 0.05) == round(3000 * 0.95 * 3 / 20)
