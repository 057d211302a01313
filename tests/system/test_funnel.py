"""End to end through the whole funnel on the embedded stack: join to order."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from system import schema
from system.clients import make_client
from system.embedded import EmbeddedState
from system.stack import StackResources
from tests.helpers import get_fan, join_fan, wait_for

FANS = 300
STOCK = 200
WINDOWS = 10
FUNNEL_TIMEOUT_SECONDS = 240


def _buy_when_admitted(
    fan_id: str,
    dynamodb: Any,
    resources: StackResources,
    http: httpx.Client,
    deadline: float,
    sold_out: threading.Event,
) -> str:
    """Poll the fan's item like a browser and buy one ticket once admitted."""
    while time.monotonic() < deadline:
        item = get_fan(dynamodb, resources, fan_id)
        status = item.get(schema.STATUS)
        if status in schema.FINAL_STATUSES:
            return str(status)
        if status == schema.ADMITTED and item.get(schema.PURCHASE_URL):
            token = httpx.URL(str(item[schema.PURCHASE_URL])).params["token"]
            response = http.post(
                "/api/purchase",
                json={"token": token, "fan_id": fan_id, "quantity": 1},
            )
            if response.status_code == 200:
                return "purchased"
            if response.json().get("error") == "sold_out":
                sold_out.set()
                return "sold_out"
            raise AssertionError(
                f"purchase failed: {response.status_code} {response.text}"
            )
        time.sleep(0.5)
    return f"timed out in status {status!r}"


def test_funnel_sells_stock_fairly(
    stack: EmbeddedState, resources: StackResources, dynamodb: Any, make_sale: Any
) -> None:
    sale = make_sale(
        stock=STOCK, window_count=WINDOWS, session_seconds=60, claim_timeout_seconds=30
    )
    cognito = make_client(stack.settings, "cognito-identity")
    raw = make_client(stack.settings, "dynamodb")
    fan_ids = [
        join_fan(stack.settings, resources, sale.sale_id, cognito=cognito, dynamodb=raw)
        for _ in range(FANS)
    ]
    deadline = time.monotonic() + FUNNEL_TIMEOUT_SECONDS
    sold_out = threading.Event()
    with (
        httpx.Client(base_url=stack.ticketing_url, timeout=30) as http,
        ThreadPoolExecutor(max_workers=WINDOWS * 2) as pool,
    ):
        outcomes = list(
            pool.map(
                lambda fan: _buy_when_admitted(
                    fan, dynamodb, resources, http, deadline, sold_out
                ),
                fan_ids,
            )
        )

    items = [get_fan(dynamodb, resources, fan) for fan in fan_ids]
    numbers = [int(item[schema.QUEUE_NUMBER]) for item in items]
    assert len(set(numbers)) == FANS, "queue numbers are not unique"

    unresolved = [o for o in outcomes if o not in ("purchased", "sold_out")]
    assert unresolved == [], (
        f"fans neither admitted nor told sold out: {unresolved[:5]}"
    )

    orders = _orders_for(dynamodb, resources, sale.sale_id)
    assert len(orders) == min(STOCK, FANS)
    assert sum(int(order[schema.QUANTITY]) for order in orders) <= STOCK
    sale_item = dynamodb.Table(resources.sales_table).get_item(
        Key={schema.SALE_ID: sale.sale_id}, ConsistentRead=True
    )["Item"]
    assert int(sale_item[schema.TICKETS_LEFT]) == 0

    admitted = sorted(
        (item for item in items if schema.ADMITTED_AT in item),
        key=lambda item: (
            float(item[schema.ADMITTED_AT]),
            int(item[schema.QUEUE_NUMBER]),
        ),
    )
    by_number = sorted(int(item[schema.QUEUE_NUMBER]) for item in admitted)
    rank_by_number = {number: rank for rank, number in enumerate(by_number)}
    earliness = [
        rank_by_number[int(item[schema.QUEUE_NUMBER])] - position
        for position, item in enumerate(admitted)
    ]
    assert max(earliness) <= WINDOWS, "a fan was admitted more than W places early"


def _orders_for(dynamodb: Any, resources: StackResources, sale_id: str) -> list[Any]:
    table = dynamodb.Table(resources.orders_table)
    orders: list[Any] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        orders.extend(o for o in page["Items"] if o.get(schema.SALE_ID) == sale_id)
        if "LastEvaluatedKey" not in page:
            return orders
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_refresh_and_second_tab_keep_place(
    stack: EmbeddedState, resources: StackResources, dynamodb: Any, make_sale: Any
) -> None:
    sale = make_sale(stock=10, window_count=1, session_seconds=60)
    # Hold the only window with a first fan, so the second one keeps waiting.
    first = join_fan(stack.settings, resources, sale.sale_id)
    fan_id = join_fan(stack.settings, resources, sale.sale_id)
    item = wait_for(
        lambda: get_fan(dynamodb, resources, fan_id).get(schema.QUEUE_NUMBER),
        timeout=60,
        message="a queue number",
    )
    raw = make_client(stack.settings, "dynamodb")
    for _ in range(2):  # a reload, then a second tab: the same identity joins again
        try:
            raw.put_item(
                TableName=resources.queue_table,
                Item={
                    schema.FAN_ID: {"S": fan_id},
                    schema.SALE_ID: {"S": sale.sale_id},
                    schema.CLIENT_TIME: {"N": str(int(time.time() * 1000))},
                },
                ConditionExpression="attribute_not_exists(fan_id)",
            )
        except raw.exceptions.ConditionalCheckFailedException:
            pass
        else:
            raise AssertionError("a second join of the same fan was accepted")
    time.sleep(2)
    assert get_fan(dynamodb, resources, fan_id)[schema.QUEUE_NUMBER] == item
    assert first != fan_id
