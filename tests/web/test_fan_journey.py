"""A fan's journey through the real pages, in headless Chromium, on the embedded stack.

The browser joins and polls DynamoDB itself. The other fans in these tests
join from Python the browser's way (tests.helpers.join_fan), and the test
buys for them, so the line moves on at a pace the test controls.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from boto3.dynamodb.conditions import Attr

from system import schema, tokens
from system.embedded import EmbeddedState
from system.sale import get_sale
from system.stack import StackResources
from tests.helpers import get_fan, join_fan, wait_for
from tests.web.pages import FanPages

pytestmark = pytest.mark.browser

COUNTDOWN_SECONDS = 15
FANS_AHEAD = 3
# Polls at the slowest are 12 s apart while no admission rate is known.
STEP_TIMEOUT_SECONDS = 40
# Windows that stay open for the whole test, so a fan ahead keeps its window
# until the test buys for it.
LONG_WINDOW_SECONDS = 300


def _admitted_token(dynamodb: Any, resources: StackResources, fan_id: str) -> str:
    item = wait_for(
        lambda: _admitted(get_fan(dynamodb, resources, fan_id)),
        timeout=STEP_TIMEOUT_SECONDS,
        message=f"fan {fan_id} to be admitted",
    )
    return parse_qs(urlparse(str(item[schema.PURCHASE_URL])).query)["token"][0]


def _admitted(item: dict[str, Any]) -> dict[str, Any] | None:
    if item.get(schema.STATUS) == schema.ADMITTED and item.get(schema.PURCHASE_URL):
        return item
    return None


def _buy_for(
    http: httpx.Client,
    dynamodb: Any,
    resources: StackResources,
    fan_id: str,
    quantity: int = 1,
) -> None:
    token = _admitted_token(dynamodb, resources, fan_id)
    response = http.post(
        "/api/purchase", json={"token": token, "fan_id": fan_id, "quantity": quantity}
    )
    assert response.status_code == 200, response.text


def _fans_in_line(dynamodb: Any, resources: StackResources, sale_id: str) -> set[str]:
    table = dynamodb.Table(resources.queue_table)
    items = table.scan(FilterExpression=Attr(schema.SALE_ID).eq(sale_id))["Items"]
    return {str(item[schema.FAN_ID]) for item in items}


def _numbered(dynamodb: Any, resources: StackResources, fan_id: str) -> int | None:
    number = get_fan(dynamodb, resources, fan_id).get(schema.QUEUE_NUMBER)
    return None if number is None else int(number)


def _open_line(
    make_sale: Any, stack: EmbeddedState, resources: StackResources, **fields: Any
) -> tuple[Any, str]:
    """Open a one-window sale and admit a fan to its window; return both."""
    fields.setdefault("stock", 10)
    sale = make_sale(
        window_count=1,
        session_seconds=LONG_WINDOW_SECONDS,
        claim_timeout_seconds=LONG_WINDOW_SECONDS,
        **fields,
    )
    holder = join_fan(stack.settings, resources, sale.sale_id)
    return sale, holder


def test_fan_waits_for_the_sale_joins_and_buys(
    pages: FanPages,
    stack: EmbeddedState,
    resources: StackResources,
    dynamodb: Any,
    make_sale: Any,
) -> None:
    sale = make_sale(
        on_sale_at=time.time() + COUNTDOWN_SECONDS,
        stock=20,
        window_count=1,
        session_seconds=LONG_WINDOW_SECONDS,
        claim_timeout_seconds=LONG_WINDOW_SECONDS,
    )
    ahead = [
        join_fan(stack.settings, resources, sale.sale_id) for _ in range(FANS_AHEAD)
    ]

    pages.open_countdown(sale.sale_id)
    pages.wait_for_phase("counting", timeout=STEP_TIMEOUT_SECONDS)
    clock = pages.text("clock")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", clock), clock
    assert clock != "00:00:00"
    assert urlparse(pages.driver.current_url).path == "/"
    numbers = [
        wait_for(
            lambda fan=fan: _numbered(dynamodb, resources, fan),
            timeout=STEP_TIMEOUT_SECONDS,
            message=f"fan {fan} to be numbered",
        )
        for fan in ahead
    ]

    # The clock runs out, the page moves to the line on its own and joins.
    pages.wait_for_phase("waiting", timeout=COUNTDOWN_SECONDS + STEP_TIMEOUT_SECONDS)
    assert urlparse(pages.driver.current_url).path == "/queue.html"
    fan_id = pages.fan_id()
    assert fan_id is not None
    assert pages.number("queue-number") == _numbered(dynamodb, resources, fan_id)
    assert pages.number("queue-number") > max(numbers)
    assert pages.text("wait")

    places = [pages.number("place")]
    with httpx.Client(base_url=stack.ticketing_url, timeout=30) as http:
        for fan in ahead:
            _buy_for(http, dynamodb, resources, fan)
            if fan == ahead[-1]:
                break  # the fan's own turn comes next
            last = places[-1]
            places.append(
                pages.wait_until(
                    lambda last=last: _smaller(pages.number("place"), last),
                    timeout=STEP_TIMEOUT_SECONDS,
                    what=f"a place in line below {last}",
                )
            )
    assert len(places) == FANS_AHEAD
    assert places == sorted(places, reverse=True)

    # Admitted: the queue page moves to the purchase page at once.
    pages.wait_until(
        lambda: urlparse(pages.driver.current_url).path == "/purchase",
        timeout=STEP_TIMEOUT_SECONDS,
        what="the purchase page",
    )
    pages.wait_for_phase("choosing", timeout=STEP_TIMEOUT_SECONDS)
    pages.choose_quantity(2)
    pages.buy()
    pages.wait_for_phase("confirmed", timeout=STEP_TIMEOUT_SECONDS)
    item = wait_for(
        lambda: _with_status(get_fan(dynamodb, resources, fan_id), schema.PURCHASED),
        timeout=STEP_TIMEOUT_SECONDS,
        message="the fan's item to say purchased",
    )
    assert pages.text("order-id")
    if schema.ORDER_ID in item:
        assert pages.text("order-id") == item[schema.ORDER_ID]
    assert pages.text("bought-quantity") == "2"
    sold = get_sale(dynamodb.Table(resources.sales_table), sale.sale_id)
    assert int(sold[schema.TICKETS_LEFT]) == 20 - len(ahead) - 2


def _smaller(value: int | None, than: int | None) -> int | None:
    if value is None or than is None or value >= than:
        return None
    return value


def _with_status(item: dict[str, Any], status: str) -> dict[str, Any] | None:
    return item if item.get(schema.STATUS) == status else None


def test_reload_keeps_the_place(
    pages: FanPages,
    stack: EmbeddedState,
    resources: StackResources,
    dynamodb: Any,
    make_sale: Any,
) -> None:
    sale, holder = _open_line(make_sale, stack, resources)
    pages.open_queue(sale.sale_id)
    pages.wait_for_phase("waiting", timeout=STEP_TIMEOUT_SECONDS)
    fan_id = pages.fan_id()
    number = pages.number("queue-number")

    pages.driver.refresh()
    pages.wait_for_phase("waiting", timeout=STEP_TIMEOUT_SECONDS)

    assert pages.fan_id() == fan_id
    assert pages.number("queue-number") == number
    assert _fans_in_line(dynamodb, resources, sale.sale_id) == {holder, fan_id}


def test_two_tabs_hold_one_place(
    pages: FanPages,
    stack: EmbeddedState,
    resources: StackResources,
    dynamodb: Any,
    make_sale: Any,
) -> None:
    sale, holder = _open_line(make_sale, stack, resources)
    driver = pages.driver
    # The second tab opens while the first may still be getting its identity.
    pages.open_queue(sale.sale_id)
    first = driver.current_window_handle
    driver.switch_to.new_window("tab")
    pages.open_queue(sale.sale_id)
    second = driver.current_window_handle

    seen = []
    for handle in (first, second):
        driver.switch_to.window(handle)
        pages.wait_for_phase("waiting", timeout=STEP_TIMEOUT_SECONDS)
        seen.append((pages.fan_id(), pages.number("queue-number")))

    assert seen[0] == seen[1]
    assert _fans_in_line(dynamodb, resources, sale.sale_id) == {holder, seen[0][0]}


def test_two_sales_keep_both_places(
    pages: FanPages,
    stack: EmbeddedState,
    resources: StackResources,
    dynamodb: Any,
    make_sale: Any,
) -> None:
    spring, _ = _open_line(make_sale, stack, resources)
    autumn, _ = _open_line(make_sale, stack, resources)
    places = {}
    for sale in (spring, autumn, spring):
        pages.open_queue(sale.sale_id)
        pages.wait_for_phase("waiting", timeout=STEP_TIMEOUT_SECONDS)
        place = (pages.fan_id(), pages.number("queue-number"))
        assert places.setdefault(sale.sale_id, place) == place

    assert places[spring.sale_id][0] != places[autumn.sale_id][0]
    for sale in (spring, autumn):
        fan_id = places[sale.sale_id][0]
        assert fan_id in _fans_in_line(dynamodb, resources, sale.sale_id)


def test_late_fan_sees_sold_out(
    pages: FanPages,
    stack: EmbeddedState,
    resources: StackResources,
    dynamodb: Any,
    make_sale: Any,
) -> None:
    sale, holder = _open_line(make_sale, stack, resources, stock=2)
    with httpx.Client(base_url=stack.ticketing_url, timeout=30) as http:
        _buy_for(http, dynamodb, resources, holder, quantity=2)
    sales = dynamodb.Table(resources.sales_table)
    wait_for(
        lambda: get_sale(sales, sale.sale_id).get(schema.SOLD_OUT_FLAG),
        timeout=STEP_TIMEOUT_SECONDS,
        message="the sale to be sold out",
    )

    pages.open_queue(sale.sale_id)
    pages.wait_for_phase("sold_out", timeout=STEP_TIMEOUT_SECONDS)

    assert "Sold out" in pages.text()
    fan_id = pages.fan_id()
    assert fan_id is not None
    assert get_fan(dynamodb, resources, fan_id) == {}  # took no place


def test_fan_in_line_sees_sold_out(
    pages: FanPages,
    stack: EmbeddedState,
    resources: StackResources,
    dynamodb: Any,
    make_sale: Any,
) -> None:
    sale, holder = _open_line(make_sale, stack, resources, stock=1)
    pages.open_queue(sale.sale_id)
    pages.wait_for_phase("waiting", timeout=STEP_TIMEOUT_SECONDS)

    with httpx.Client(base_url=stack.ticketing_url, timeout=30) as http:
        _buy_for(http, dynamodb, resources, holder, quantity=1)

    pages.wait_for_phase("sold_out", timeout=STEP_TIMEOUT_SECONDS)


def test_order_above_stock_asks_for_fewer(
    pages: FanPages, resources: StackResources, dynamodb: Any, make_sale: Any
) -> None:
    sale = make_sale(
        stock=3,
        window_count=1,
        session_seconds=LONG_WINDOW_SECONDS,
        claim_timeout_seconds=LONG_WINDOW_SECONDS,
    )
    pages.open_queue(sale.sale_id)
    pages.wait_until(
        lambda: urlparse(pages.driver.current_url).path == "/purchase",
        timeout=STEP_TIMEOUT_SECONDS,
        what="the purchase page",
    )
    pages.wait_for_phase("choosing", timeout=STEP_TIMEOUT_SECONDS)

    pages.choose_quantity(4)
    pages.buy()
    pages.wait_for_phase("retry", timeout=STEP_TIMEOUT_SECONDS)
    assert "Only 3 tickets are left" in pages.text("problem")
    assert not pages.quantity_enabled(4)
    assert pages.quantity_enabled(3)

    pages.choose_quantity(3)
    pages.buy()
    pages.wait_for_phase("confirmed", timeout=STEP_TIMEOUT_SECONDS)
    assert pages.text("bought-quantity") == "3"
    sold = get_sale(dynamodb.Table(resources.sales_table), sale.sale_id)
    assert int(sold[schema.TICKETS_LEFT]) == 0


def test_lost_connection_backs_off_says_so_and_recovers(
    pages: FanPages,
    stack: EmbeddedState,
    resources: StackResources,
    make_sale: Any,
) -> None:
    sale, _ = _open_line(make_sale, stack, resources)
    pages.open_queue(sale.sale_id)
    pages.wait_for_phase("waiting", timeout=STEP_TIMEOUT_SECONDS)
    number = pages.number("queue-number")

    # Chromium drops every request to the stack, as when the network fails.
    driver = pages.driver
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.setBlockedURLs", {"urls": [f"*127.0.0.1:{stack.port}*"]}
    )
    banner = pages.wait_until(
        pages.trouble, timeout=STEP_TIMEOUT_SECONDS, what="the trouble banner"
    )
    assert "can't reach the line" in banner
    assert "Your place is kept" in banner
    assert re.search(r"Trying again in \d+ s", banner)

    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    pages.wait_until(
        lambda: not pages.trouble(),
        timeout=STEP_TIMEOUT_SECONDS,
        what="the trouble banner to go",
    )
    assert pages.phase() == "waiting"
    assert pages.number("queue-number") == number


def test_invalid_purchase_link_says_what_happened(pages: FanPages) -> None:
    pages.open_purchase("not-a-token")
    assert pages.wait_for_phase("closed", timeout=STEP_TIMEOUT_SECONDS)
    assert "not valid" in pages.text()


def test_expired_purchase_link_says_so(pages: FanPages, stack: EmbeddedState) -> None:
    secret = stack.secret_path.read_text().strip().encode()
    token, _ = tokens.issue(
        secret,
        fan_id="us-east-1:00000000-0000-0000-0000-000000000000",
        sale_id="tour-2027",
        window_id="w-0",
        expires_at=time.time() - 60,
    )
    pages.open_purchase(token)
    assert pages.wait_for_phase("closed", timeout=STEP_TIMEOUT_SECONDS)
    assert "expired" in pages.text()
