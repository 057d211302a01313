"""The probe against the embedded stack: every stage, pump mode and cleanup."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from synthetic.config import CANARY_SALE_ID, ProbeConfig
from synthetic.footprint import Footprint
from synthetic.probe import Probe
from synthetic.result import PASSED, STAGES, ProbeResult
from system import schema
from system.embedded import EmbeddedState
from system.fan import Fan
from system.stack import StackResources
from tests.helpers import wait_for

# Generous for a shared 2-core machine; a healthy probe takes a few seconds.
DEADLINES = {"join": 10.0, "forward": 20.0, "admission": 20.0, "purchase": 10.0}
TOTAL_DEADLINE_SECONDS = 50.0
SPIKE_FANS = 40


def make_probe(stack: EmbeddedState, resources: StackResources, **fields: Any) -> Probe:
    fields.setdefault("stage_deadlines_seconds", DEADLINES)
    fields.setdefault("total_deadline_seconds", TOTAL_DEADLINE_SECONDS)
    fields.setdefault("poll_interval_seconds", 0.2)
    return Probe(stack.settings, resources, ProbeConfig(**fields))


@pytest.fixture
def probe(stack: EmbeddedState, resources: StackResources) -> Iterator[Probe]:
    probe = make_probe(stack, resources)
    yield probe
    probe.close()


def sale_item(dynamodb: Any, resources: StackResources, sale_id: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.Table(resources.sales_table).get_item(
        Key={schema.SALE_ID: sale_id}, ConsistentRead=True
    )["Item"]
    return item


def orders_of(dynamodb: Any, resources: StackResources, sale_id: str) -> list[Any]:
    items = dynamodb.Table(resources.orders_table).scan(ConsistentRead=True)["Items"]
    return [item for item in items if item.get(schema.SALE_ID) == sale_id]


def assert_left_nothing(probe: Probe, result: ProbeResult) -> None:
    footprint = Footprint(
        sale_id=result.sale_id, fan_id=result.fan_id, order_id=result.order_id
    )
    assert result.fan_id is not None
    assert probe.cleaner.leftovers(footprint) == []
    assert result.cleanup_errors == []


def test_healthy_probe_passes_every_stage(
    probe: Probe, dynamodb: Any, resources: StackResources
) -> None:
    result = probe.run()
    assert result.healthy, result.summary()
    assert [stage.stage for stage in result.stages] == list(STAGES)
    assert all(stage.outcome == PASSED for stage in result.stages)
    assert result.order_id is not None
    assert result.duration_seconds < TOTAL_DEADLINE_SECONDS


def test_healthy_probe_leaves_nothing_behind(
    probe: Probe, dynamodb: Any, resources: StackResources
) -> None:
    probe.run()  # creates the canary sale on a fresh stack
    before = sale_item(dynamodb, resources, CANARY_SALE_ID)
    result = probe.run()
    after = sale_item(dynamodb, resources, CANARY_SALE_ID)
    assert result.healthy, result.summary()
    assert_left_nothing(probe, result)
    assert orders_of(dynamodb, resources, CANARY_SALE_ID) == []
    assert after[schema.TICKETS_LEFT] == before[schema.TICKETS_LEFT]
    assert after.get(schema.SOLD_COUNT, 0) == before.get(schema.SOLD_COUNT, 0)
    assert after.get(schema.ADMITTED_COUNT, 0) == before.get(schema.ADMITTED_COUNT, 0)
    windows = dynamodb.Table(resources.windows_table).query(
        KeyConditionExpression="sale_id = :sale",
        ExpressionAttributeValues={":sale": CANARY_SALE_ID},
        ConsistentRead=True,
    )["Items"]
    # Other tests share the canary sale on this stack, so only this probe's
    # fan is looked for.
    busy = [w for w in windows if w["status"] != "free"]
    assert [w["window_id"] for w in busy if w.get("fan_id") == result.fan_id] == []


@pytest.mark.parametrize("inject_at", ["forward", "admission"])
def test_pump_mode_passes_from_its_stage(
    stack: EmbeddedState,
    resources: StackResources,
    inject_at: str,
) -> None:
    # Injected at admission, the fan skips the forwarder while its stream
    # mapping runs: the forwarder leaves a synthetic fan that is already
    # numbered alone.
    probe = make_probe(stack, resources, inject_at=inject_at)
    result = probe.run()
    probe.close()
    assert result.healthy, result.summary()
    skipped = STAGES[: STAGES.index(inject_at)]
    assert [s.stage for s in result.stages if s.outcome == "skipped"] == list(skipped)
    assert_left_nothing(probe, result)


def test_probes_run_at_once_without_clashing(
    stack: EmbeddedState, resources: StackResources
) -> None:
    probe = make_probe(stack, resources)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: probe.run(), range(3)))
    probe.close()
    assert all(result.healthy for result in results), [r.summary() for r in results]
    assert len({result.fan_id for result in results}) == 3
    assert len({result.order_id for result in results}) == 3
    for result in results:
        assert_left_nothing(probe, result)


def test_timed_out_stage_is_reported_and_cleaned(
    stack: EmbeddedState, resources: StackResources
) -> None:
    # A deadline no funnel can meet: the stage must time out, not hang.
    probe = make_probe(
        stack, resources, stage_deadlines_seconds={**DEADLINES, "forward": 0.001}
    )
    started = time.monotonic()
    result = probe.run()
    probe.close()
    assert time.monotonic() - started < 15
    failed = result.failed_stage
    assert failed is not None
    assert failed.stage == "forward"
    assert failed.outcome == "timed_out"
    assert result.stage("admission").outcome == "skipped"
    assert "forward timed out" in result.summary()
    assert result.cleanup_errors == []


def test_probe_during_spike_takes_no_stock(
    stack: EmbeddedState, resources: StackResources, dynamodb: Any, make_sale: Any
) -> None:
    # More stock than fans, so the sale stays open for the probe behind them.
    sale = make_sale(stock=100, window_count=5, session_seconds=30)
    outcomes: list[str] = []
    fans_done = threading.Event()

    def plain_fan(_: int) -> str:
        with Fan(stack.settings, resources) as fan:
            fan.join(sale.sale_id)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                view = fan.poll()
                if view.status in schema.FINAL_STATUSES:
                    return str(view.status)
                if view.purchase_url:
                    fan.claim(view)
                    return "purchased" if fan.buy(1, view=view).order_id else "?"
                time.sleep(0.3)
            return "timed out"

    def run_fans() -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes.extend(pool.map(plain_fan, range(SPIKE_FANS)))
        fans_done.set()

    spike = threading.Thread(target=run_fans)
    spike.start()
    wait_for(
        lambda: sale_item(dynamodb, resources, sale.sale_id).get(schema.SERVING),
        timeout=60,
        message="the spike's first admission",
    )
    probe = make_probe(
        stack,
        resources,
        sale_id=sale.sale_id,
        stage_deadlines_seconds={**DEADLINES, "admission": 60.0},
        total_deadline_seconds=90.0,
    )
    result = probe.run()
    probe.close()
    spike.join(timeout=120)
    assert fans_done.is_set()

    assert result.healthy, result.summary()
    assert_left_nothing(probe, result)
    sold = outcomes.count("purchased")
    assert sold == SPIKE_FANS
    item = sale_item(dynamodb, resources, sale.sale_id)
    assert item[schema.TICKETS_LEFT] == 100 - sold
    assert item[schema.SOLD_COUNT] == sold
    wait_for(
        lambda: (
            sale_item(dynamodb, resources, sale.sale_id).get(schema.ADMITTED_COUNT)
            == SPIKE_FANS
        ),
        timeout=10,
        message=f"admitted_count to count the {SPIKE_FANS} real fans only",
    )
    orders = orders_of(dynamodb, resources, sale.sale_id)
    assert len(orders) == sold
    assert not any(order.get(schema.SYNTHETIC) for order in orders)
