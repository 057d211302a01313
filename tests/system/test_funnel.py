"""End to end through the whole funnel on the embedded stack: join to order."""

from __future__ import annotations

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


def _fetch_fans(raw: Any, resources: StackResources, fan_ids: list[str]) -> list[Any]:
    """Read fans' items in BatchGetItem sweeps, as cheap as a crowd of polls."""
    items: list[Any] = []
    for start in range(0, len(fan_ids), 100):
        keys = [{schema.FAN_ID: {"S": fan}} for fan in fan_ids[start : start + 100]]
        request = {resources.queue_table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            page = raw.batch_get_item(RequestItems=request)
            items.extend(page["Responses"].get(resources.queue_table, []))
            request = page.get("UnprocessedKeys") or {}
    return items


def _buy(http: httpx.Client, fan_id: str, purchase_url: str) -> str:
    token = httpx.URL(purchase_url).params["token"]
    response = http.post(
        "/api/purchase", json={"token": token, "fan_id": fan_id, "quantity": 1}
    )
    if response.status_code == 200:
        return schema.PURCHASED
    if response.status_code == 409 and response.json().get("error") == "sold_out":
        return schema.SOLD_OUT
    raise AssertionError(f"purchase failed: {response.status_code} {response.text}")


def _run_buyers(
    raw: Any, resources: StackResources, ticketing_url: str, fan_ids: list[str]
) -> dict[str, str]:
    """Poll every fan like its browser would and buy one ticket once admitted."""
    outcomes: dict[str, str] = {}
    buying: set[str] = set()
    deadline = time.monotonic() + FUNNEL_TIMEOUT_SECONDS
    with (
        httpx.Client(base_url=ticketing_url, timeout=30) as http,
        ThreadPoolExecutor(max_workers=WINDOWS) as pool,
    ):
        futures = {}
        while len(outcomes) < len(fan_ids) and time.monotonic() < deadline:
            pending = [fan for fan in fan_ids if fan not in outcomes]
            for item in _fetch_fans(raw, resources, pending):
                fan = item[schema.FAN_ID]["S"]
                status = item.get(schema.STATUS, {}).get("S")
                url = item.get(schema.PURCHASE_URL, {}).get("S")
                if status in schema.FINAL_STATUSES and fan not in buying:
                    outcomes[fan] = status
                elif status == schema.ADMITTED and url and fan not in buying:
                    buying.add(fan)
                    futures[fan] = pool.submit(_buy, http, fan, url)
            for fan, future in list(futures.items()):
                if future.done():
                    outcomes[fan] = future.result()
                    del futures[fan]
            time.sleep(0.5)
    return outcomes


def test_funnel_sells_stock_fairly(
    stack: EmbeddedState, resources: StackResources, dynamodb: Any, make_sale: Any
) -> None:
    sale = make_sale(
        stock=STOCK, window_count=WINDOWS, session_seconds=120, claim_timeout_seconds=60
    )
    cognito = make_client(stack.settings, "cognito-identity")
    raw = make_client(stack.settings, "dynamodb")
    fan_ids = [
        join_fan(stack.settings, resources, sale.sale_id, cognito=cognito, dynamodb=raw)
        for _ in range(FANS)
    ]
    outcomes = _run_buyers(raw, resources, stack.ticketing_url, fan_ids)

    items = [get_fan(dynamodb, resources, fan) for fan in fan_ids]
    numbers = [int(item[schema.QUEUE_NUMBER]) for item in items]
    assert len(set(numbers)) == FANS, "queue numbers are not unique"

    unresolved = [fan for fan in fan_ids if fan not in outcomes]
    assert unresolved == [], f"fans never admitted nor told sold out: {unresolved[:5]}"
    assert set(outcomes.values()) <= {schema.PURCHASED, schema.SOLD_OUT}
    assert list(outcomes.values()).count(schema.PURCHASED) == min(STOCK, FANS)

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
