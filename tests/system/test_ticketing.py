"""The ticketing service against the embedded stack: sales, races and queue jumps."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jwt
import pytest

from system import embedded, schema, tokens
from system.sale import SaleConfig
from tests.system.ticketing_stack import (
    Admission,
    TicketingStack,
    start_ticketing,
    stop_process,
)

RACE_BUYERS = 50
REQUEST_TIMEOUT_SECONDS = 60


@pytest.fixture
def client(ticketing_stack: TicketingStack) -> Any:
    with httpx.Client(
        base_url=ticketing_stack.url, timeout=REQUEST_TIMEOUT_SECONDS
    ) as http:
        yield http


def buy(
    client: httpx.Client,
    admission: Admission,
    quantity: int = 1,
    *,
    token: str | None = None,
    fan_id: str | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/api/purchase",
        json={
            "token": token if token is not None else admission.token,
            "fan_id": fan_id if fan_id is not None else admission.fan_id,
            "quantity": quantity,
        },
        headers=headers,
    )


def sale_item(stack: TicketingStack, sale_id: str) -> dict[str, Any]:
    return stack.table("sales_table").get_item(
        Key={schema.SALE_ID: sale_id}, ConsistentRead=True
    )["Item"]


def window_item(stack: TicketingStack, admission: Admission) -> dict[str, Any]:
    return stack.table("windows_table").get_item(
        Key={schema.SALE_ID: admission.sale_id, schema.WINDOW_ID: admission.window_id},
        ConsistentRead=True,
    )["Item"]


def fan_item(stack: TicketingStack, fan_id: str) -> dict[str, Any]:
    return stack.table("queue_table").get_item(
        Key={schema.FAN_ID: fan_id}, ConsistentRead=True
    )["Item"]


def order_item(stack: TicketingStack, order_id: str) -> dict[str, Any] | None:
    return (
        stack.table("orders_table")
        .get_item(Key={schema.ORDER_ID: order_id}, ConsistentRead=True)
        .get("Item")
    )


def orders_of(client: httpx.Client, sale_id: str) -> dict[str, Any]:
    response = client.get("/api/orders", params={"sale": sale_id})
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_stock_untouched(stack: TicketingStack, sale: SaleConfig) -> None:
    item = sale_item(stack, sale.sale_id)
    assert item[schema.TICKETS_LEFT] == sale.stock
    assert item[schema.SOLD_COUNT] == 0


def tamper(token: str, **changes: Any) -> str:
    """Rewrite claims in the token's payload and keep the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return f"{header}.{encoded.decode()}.{signature}"


def test_healthz_answers_ok(client: httpx.Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_purchase_sells_and_frees_window(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=10)
    fan = admit(sale)

    response = buy(client, fan, 2, key="first-try")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "order_id": fan.claims.token_id,
        "quantity": 2,
        "tickets_left": 8,
        "synthetic": False,
        "dry_run": False,
    }
    order = order_item(ticketing_stack, fan.claims.token_id)
    assert order is not None
    assert order[schema.FAN_ID] == fan.fan_id
    assert order[schema.SALE_ID] == sale.sale_id
    assert order[schema.WINDOW_ID] == fan.window_id
    assert order[schema.QUANTITY] == 2
    assert order[schema.IDEMPOTENCY_KEY] == "first-try"
    assert order[schema.SYNTHETIC] is False
    assert schema.CREATED_AT in order
    item = sale_item(ticketing_stack, sale.sale_id)
    assert item[schema.TICKETS_LEFT] == 8
    assert item[schema.SOLD_COUNT] == 2
    assert item[schema.SOLD_OUT_FLAG] is False
    window = window_item(ticketing_stack, fan)
    assert window[schema.WINDOW_STATUS] == schema.WINDOW_FREE
    assert window[schema.FREED_REASON] == schema.FREED_BY_PURCHASE
    assert schema.TOKEN_ID not in window
    assert schema.FAN_ID not in window
    fan_after = fan_item(ticketing_stack, fan.fan_id)
    assert fan_after[schema.STATUS] == schema.PURCHASED
    assert fan_after[schema.ORDER_ID] == fan.claims.token_id
    assert schema.FINISHED_AT in fan_after
    assert orders_of(client, sale.sale_id) == {
        "sale_id": sale.sale_id,
        "orders": 1,
        "tickets_sold": 2,
        "synthetic_orders": 0,
    }


def test_retry_with_same_key_returns_same_order(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=10)
    fan = admit(sale)
    first = buy(client, fan, 3, key="key-1")

    retry = buy(client, fan, 3, key="key-1")

    assert first.status_code == 200, first.text
    assert retry.status_code == 200, retry.text
    assert retry.json()["order_id"] == first.json()["order_id"]
    assert retry.json()["quantity"] == 3
    assert retry.json()["tickets_left"] == 7
    assert sale_item(ticketing_stack, sale.sale_id)[schema.TICKETS_LEFT] == 7
    assert sale_item(ticketing_stack, sale.sale_id)[schema.SOLD_COUNT] == 3
    assert orders_of(client, sale.sale_id)["orders"] == 1


def test_last_ticket_race_sells_once(
    ticketing_stack: TicketingStack, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=1, window_count=RACE_BUYERS)
    fans = [admit(sale) for _ in range(RACE_BUYERS)]
    barrier = threading.Barrier(RACE_BUYERS, timeout=REQUEST_TIMEOUT_SECONDS)

    def race(fan: Admission) -> httpx.Response:
        with httpx.Client(
            base_url=ticketing_stack.url, timeout=REQUEST_TIMEOUT_SECONDS
        ) as http:
            http.get("/healthz")  # connect before the start line
            barrier.wait()
            return buy(http, fan, 1, key=fan.fan_id)

    with ThreadPoolExecutor(max_workers=RACE_BUYERS) as pool:
        responses = list(pool.map(race, fans))

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {200: 1, 409: RACE_BUYERS - 1}, [r.text for r in responses]
    losers = [
        (fan, response)
        for fan, response in zip(fans, responses, strict=True)
        if response.status_code == 409
    ]
    assert {response.json()["error"] for _, response in losers} == {"sold_out"}
    item = sale_item(ticketing_stack, sale.sale_id)
    assert item[schema.TICKETS_LEFT] == 0
    assert item[schema.SOLD_COUNT] == 1
    assert item[schema.SOLD_OUT_FLAG] is True
    with httpx.Client(base_url=ticketing_stack.url) as http:
        assert orders_of(http, sale.sale_id)["orders"] == 1
        assert orders_of(http, sale.sale_id)["tickets_sold"] == 1
    for fan, _ in losers:
        window = window_item(ticketing_stack, fan)
        assert window[schema.WINDOW_STATUS] == schema.WINDOW_FREE
        assert window[schema.FREED_REASON] == schema.FREED_BY_SOLD_OUT
        assert fan_item(ticketing_stack, fan.fan_id)[schema.STATUS] == schema.SOLD_OUT


def forged(stack: TicketingStack, fan: Admission) -> tuple[str, str]:
    token, _ = tokens.issue(
        secrets.token_bytes(32),
        fan_id=fan.fan_id,
        sale_id=fan.sale_id,
        window_id=fan.window_id,
        expires_at=fan.claims.expires_at,
    )
    return token, fan.fan_id


def tampered(stack: TicketingStack, fan: Admission) -> tuple[str, str]:
    # A valid token of one fan, rewritten to name another fan's window.
    return tamper(fan.token, win="w-999"), fan.fan_id


def expired(stack: TicketingStack, fan: Admission) -> tuple[str, str]:
    token, _ = tokens.issue(
        stack.secret,
        fan_id=fan.fan_id,
        sale_id=fan.sale_id,
        window_id=fan.window_id,
        expires_at=time.time() - 5,
    )
    return token, fan.fan_id


def random_token(stack: TicketingStack, fan: Admission) -> tuple[str, str]:
    return secrets.token_urlsafe(48), fan.fan_id


def unsigned(stack: TicketingStack, fan: Admission) -> tuple[str, str]:
    payload = jwt.decode(fan.token, options={"verify_signature": False})
    return jwt.encode(payload, key=None, algorithm="none"), fan.fan_id


def other_fans_token(stack: TicketingStack, fan: Admission) -> tuple[str, str]:
    return fan.token, "us-east-1:someone-else"


def other_window(stack: TicketingStack, fan: Admission) -> tuple[str, str]:
    # Correctly signed, but for a window that is free.
    stack.table("windows_table").put_item(
        Item={
            schema.SALE_ID: fan.sale_id,
            schema.WINDOW_ID: "w-free",
            schema.WINDOW_STATUS: schema.WINDOW_FREE,
        }
    )
    token, _ = tokens.issue(
        stack.secret,
        fan_id=fan.fan_id,
        sale_id=fan.sale_id,
        window_id="w-free",
        expires_at=fan.claims.expires_at,
    )
    return token, fan.fan_id


@pytest.mark.parametrize(
    ("make_token", "error"),
    [
        (forged, "invalid_token"),
        (tampered, "invalid_token"),
        (expired, "invalid_token"),
        (random_token, "invalid_token"),
        (unsigned, "invalid_token"),
        (other_fans_token, "wrong_fan"),
        (other_window, "window_closed"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_queue_jump_is_rejected(
    ticketing_stack: TicketingStack,
    client: httpx.Client,
    new_sale: Any,
    admit: Any,
    make_token: Any,
    error: str,
) -> None:
    sale = new_sale(stock=5)
    fan = admit(sale)
    token, fan_id = make_token(ticketing_stack, fan)

    response = buy(client, fan, 1, token=token, fan_id=fan_id)

    assert response.status_code == 403, response.text
    assert response.json()["error"] == error
    assert response.json()["message"]
    assert_stock_untouched(ticketing_stack, sale)
    assert orders_of(client, sale.sale_id)["orders"] == 0
    assert window_item(ticketing_stack, fan)[schema.TOKEN_ID] == fan.claims.token_id
    assert fan_item(ticketing_stack, fan.fan_id)[schema.STATUS] == schema.ADMITTED


def test_replayed_token_is_rejected(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5)
    fan = admit(sale)
    assert buy(client, fan, 1, key="original").status_code == 200

    without_key = buy(client, fan, 1)
    other_key = buy(client, fan, 2, key="another")

    for response in (without_key, other_key):
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "replay"
    assert sale_item(ticketing_stack, sale.sale_id)[schema.TICKETS_LEFT] == 4
    assert orders_of(client, sale.sale_id)["orders"] == 1


def test_window_busy_with_another_token_is_closed(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5)
    earlier = admit(sale, window_id="w-shared")
    later = admit(sale, window_id="w-shared")  # the window moved on to this fan

    response = buy(client, earlier, 1)

    assert response.status_code == 403, response.text
    assert response.json()["error"] == "window_closed"
    assert_stock_untouched(ticketing_stack, sale)
    assert window_item(ticketing_stack, later)[schema.TOKEN_ID] == later.claims.token_id


def test_self_written_admission_gains_nothing(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any
) -> None:
    sale = new_sale(stock=5)
    fan_id = f"us-east-1:{secrets.token_hex(8)}"
    guessed = secrets.token_urlsafe(48)
    # What a client could write onto its own item: no window was ever assigned.
    ticketing_stack.table("queue_table").put_item(
        Item={
            schema.FAN_ID: fan_id,
            schema.SALE_ID: sale.sale_id,
            schema.STATUS: schema.ADMITTED,
            schema.WINDOW_ID: "w-001",
            schema.PURCHASE_URL: tokens.purchase_url(ticketing_stack.url, guessed),
        }
    )
    self_signed, _ = tokens.issue(
        secrets.token_bytes(32),
        fan_id=fan_id,
        sale_id=sale.sale_id,
        window_id="w-001",
        expires_at=time.time() + 60,
    )

    page = client.get("/purchase", params={"token": guessed, "fan": fan_id})
    responses = [
        client.post(
            "/api/purchase",
            json={"token": token, "fan_id": fan_id, "quantity": 1},
        )
        for token in (guessed, self_signed)
    ]

    assert page.status_code == 403
    for response in responses:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "invalid_token"
    assert_stock_untouched(ticketing_stack, sale)
    assert orders_of(client, sale.sale_id)["orders"] == 0


def test_synthetic_purchase_takes_no_stock(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5)
    fan = admit(sale, synthetic=True)

    response = buy(client, fan, 2)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "order_id": fan.claims.token_id,
        "quantity": 2,
        "tickets_left": 5,
        "synthetic": True,
        "dry_run": True,
    }
    assert_stock_untouched(ticketing_stack, sale)
    order = order_item(ticketing_stack, fan.claims.token_id)
    assert order is not None
    assert order[schema.SYNTHETIC] is True
    assert order[schema.DRY_RUN] is True
    assert window_item(ticketing_stack, fan)[schema.WINDOW_STATUS] == schema.WINDOW_FREE
    assert fan_item(ticketing_stack, fan.fan_id)[schema.STATUS] == schema.PURCHASED
    assert orders_of(client, sale.sale_id) == {
        "sale_id": sale.sale_id,
        "orders": 0,
        "tickets_sold": 0,
        "synthetic_orders": 1,
    }


def test_sold_out_answers_409_and_frees_window(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=1)
    first, second = admit(sale), admit(sale)
    assert buy(client, first, 1).status_code == 200

    response = buy(client, second, 1)

    assert response.status_code == 409, response.text
    assert response.json()["error"] == "sold_out"
    item = sale_item(ticketing_stack, sale.sale_id)
    assert item[schema.TICKETS_LEFT] == 0
    assert item[schema.SOLD_OUT_FLAG] is True
    window = window_item(ticketing_stack, second)
    assert window[schema.WINDOW_STATUS] == schema.WINDOW_FREE
    assert window[schema.FREED_REASON] == schema.FREED_BY_SOLD_OUT
    fan_after = fan_item(ticketing_stack, second.fan_id)
    assert fan_after[schema.STATUS] == schema.SOLD_OUT
    assert schema.FINISHED_AT in fan_after


def test_short_stock_keeps_window_open(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=2, max_tickets_per_order=4)
    fan = admit(sale)

    too_many = buy(client, fan, 3)
    fitting = buy(client, fan, 2)

    assert too_many.status_code == 409, too_many.text
    assert too_many.json()["error"] == "not_enough_tickets"
    assert too_many.json()["tickets_left"] == 2
    assert fitting.status_code == 200, fitting.text
    assert fitting.json()["tickets_left"] == 0
    assert sale_item(ticketing_stack, sale.sale_id)[schema.SOLD_OUT_FLAG] is True


@pytest.mark.parametrize("quantity", [0, -1, 5, "2", True, 1.5, None])
def test_invalid_quantity_is_rejected(
    ticketing_stack: TicketingStack,
    client: httpx.Client,
    new_sale: Any,
    admit: Any,
    quantity: Any,
) -> None:
    sale = new_sale(stock=10, max_tickets_per_order=4)
    fan = admit(sale)

    response = buy(client, fan, quantity)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_quantity"
    assert_stock_untouched(ticketing_stack, sale)
    assert window_item(ticketing_stack, fan)[schema.WINDOW_STATUS] == schema.WINDOW_BUSY


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"fan_id": "f", "quantity": 1}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["not-json", "array", "no-token", "deeply-nested"],
)
def test_malformed_request_is_rejected(client: httpx.Client, body: bytes) -> None:
    response = client.post(
        "/api/purchase", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_claim_marks_window_claimed(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5)
    fan = admit(sale)

    response = client.post(
        "/api/claim", json={"token": fan.token, "fan_id": fan.fan_id}
    )

    assert response.status_code == 200, response.text
    assert response.json()["claimed"] is True
    assert response.json()["expires_at"] == pytest.approx(fan.claims.expires_at, 1)
    window = window_item(ticketing_stack, fan)
    assert window[schema.CLAIMED] is True
    assert schema.CLAIMED_AT in window


@pytest.mark.parametrize(("claimed", "status"), [(True, 200), (False, 403)])
def test_claim_after_deadline_needs_earlier_claim(
    ticketing_stack: TicketingStack,
    client: httpx.Client,
    new_sale: Any,
    admit: Any,
    claimed: bool,
    status: int,
) -> None:
    sale = new_sale(stock=5)
    fan = admit(sale)
    ticketing_stack.table("windows_table").update_item(
        Key={schema.SALE_ID: fan.sale_id, schema.WINDOW_ID: fan.window_id},
        UpdateExpression="SET claim_by = :past, claimed = :claimed",
        ExpressionAttributeValues={":past": int(time.time()) - 5, ":claimed": claimed},
    )

    response = client.post(
        "/api/claim", json={"token": fan.token, "fan_id": fan.fan_id}
    )

    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"] == "window_closed"


def test_claim_after_purchase_is_replay(
    client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5)
    fan = admit(sale)
    assert buy(client, fan, 1).status_code == 200

    response = client.post(
        "/api/claim", json={"token": fan.token, "fan_id": fan.fan_id}
    )

    assert response.status_code == 403
    assert response.json()["error"] == "replay"


def test_purchase_page_claims_window(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5, max_tickets_per_order=3)
    fan = admit(sale)

    response = client.get("/purchase", params={"token": fan.token})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    page = response.text
    assert 'id="quantity-3"' in page
    assert 'id="quantity-4"' not in page
    assert ">Buy</button>" in page
    assert "/api/purchase" in page
    assert "boxoffice.fan_id" in page
    assert fan.token not in page
    assert window_item(ticketing_stack, fan)[schema.CLAIMED] is True


@pytest.mark.parametrize(
    ("case", "heading"),
    [
        ("random", "not valid"),
        ("expired", "expired"),
        ("other_fan", "another fan"),
        ("used", "already been used"),
        ("closed", "window has closed"),
    ],
)
def test_purchase_page_explains_rejection(
    ticketing_stack: TicketingStack,
    client: httpx.Client,
    new_sale: Any,
    admit: Any,
    case: str,
    heading: str,
) -> None:
    sale = new_sale(stock=5)
    fan = admit(sale)
    params = {"token": fan.token}
    if case == "random":
        params["token"] = secrets.token_urlsafe(48)
    elif case == "expired":
        params["token"] = expired(ticketing_stack, fan)[0]
    elif case == "other_fan":
        params["fan"] = "us-east-1:someone-else"
    elif case == "used":
        assert buy(client, fan, 1).status_code == 200
    elif case == "closed":
        params["token"] = other_window(ticketing_stack, fan)[0]

    response = client.get("/purchase", params=params)

    assert response.status_code == 403
    assert heading in response.text
    assert "queue page" in response.text or "queue from" in response.text


def test_tokens_never_reach_log(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5)
    fans = [admit(sale) for _ in range(3)]
    client.get("/purchase", params={"token": fans[0].token})
    buy(client, fans[1], 1)
    buy(client, fans[2], 1, token=tamper(fans[2].token, win="w-999"))
    time.sleep(0.5)  # let the service flush its log lines

    log = ticketing_stack.log_path.read_text()

    assert f"order {fans[1].claims.token_id}" in log
    for fan in fans:
        assert fan.token not in log
        assert fan.token.split(".")[1] not in log


def test_metrics_count_purchases(
    ticketing_stack: TicketingStack, client: httpx.Client, new_sale: Any, admit: Any
) -> None:
    sale = new_sale(stock=5)
    assert buy(client, admit(sale), 2).status_code == 200

    metrics = httpx.get(ticketing_stack.metrics_url).text

    assert (
        f'boxoffice_purchases_total{{result="ok",sale="{sale.sale_id}",'
        'synthetic="false"} 1.0' in metrics
    )
    assert f'boxoffice_tickets_sold_total{{sale="{sale.sale_id}"}} 2.0' in metrics
    assert "boxoffice_purchase_duration_seconds_bucket" in metrics


def test_orders_needs_sale(client: httpx.Client) -> None:
    response = client.get("/api/orders")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_sigterm_stops_service_cleanly(
    ticketing_stack: TicketingStack, tmp_path: Any
) -> None:
    port, metrics_port = embedded.free_port(), embedded.free_port()
    process = start_ticketing(
        ticketing_stack.state, port, metrics_port, tmp_path / "second.log"
    )

    started = time.monotonic()
    code = stop_process(process)

    assert code == 0, (tmp_path / "second.log").read_text()
    assert time.monotonic() - started < 5
    assert "Ticketing service stopped" in (tmp_path / "second.log").read_text()
