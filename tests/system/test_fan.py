"""The fan client: join, refresh, poll and buy on the embedded stack."""

from __future__ import annotations

from typing import Any

import pytest

from system import schema
from system.embedded import EmbeddedState
from system.errors import FanStateError, TicketingRejectedError
from system.fan import Fan, split_purchase_url
from system.stack import StackResources
from tests.helpers import wait_for


def test_rejoin_keeps_the_place(
    stack: EmbeddedState, resources: StackResources, make_sale: Any
) -> None:
    sale = make_sale(stock=5, window_count=1, session_seconds=60)
    with Fan(stack.settings, resources) as first, Fan(stack.settings, resources) as fan:
        assert first.join(sale.sale_id)
        assert fan.join(sale.sale_id)
        view = wait_for(
            lambda: (v := fan.poll()).queue_number and v,
            timeout=30,
            message="a queue number",
        )
        assert fan.rejoin() is False
        assert fan.join(sale.sale_id) is False
        again = fan.poll()
    assert again.queue_number == view.queue_number
    assert again.fan[schema.SYNTHETIC] is False
    assert view.position.queue_number == view.queue_number


def test_buy_once_then_replay_is_rejected(
    stack: EmbeddedState, resources: StackResources, make_sale: Any
) -> None:
    sale = make_sale(stock=5, window_count=2, session_seconds=60)
    with Fan(stack.settings, resources) as fan:
        fan.join(sale.sale_id)
        view = wait_for(
            lambda: (v := fan.poll()).purchase_url and v,
            timeout=30,
            message="a purchase URL",
        )
        assert view.position.my_turn
        fan.claim(view)
        purchase = fan.buy(2, view=view, idempotency_key="first")
        retried = fan.buy(2, view=view, idempotency_key="first")
        with pytest.raises(TicketingRejectedError) as rejected:
            fan.buy(1, view=view, idempotency_key="second")
        after = fan.poll()
    assert purchase.quantity == 2
    assert purchase.tickets_left == 3
    assert purchase.dry_run is False
    assert retried.order_id == purchase.order_id
    assert rejected.value.status_code == 403
    assert rejected.value.error == "replay"
    assert after.status == schema.PURCHASED
    assert after.sale[schema.TICKETS_LEFT] == 3


def test_synthetic_fan_buys_as_dry_run(
    stack: EmbeddedState, resources: StackResources, make_sale: Any
) -> None:
    sale = make_sale(stock=5, window_count=1, session_seconds=60)
    with Fan(stack.settings, resources) as fan:
        fan.join(sale.sale_id, synthetic=True)
        view = wait_for(
            lambda: (v := fan.poll()).purchase_url and v,
            timeout=30,
            message="a purchase URL",
        )
        purchase = fan.buy(1, view=view)
        after = fan.poll()
    assert purchase.synthetic is True
    assert purchase.dry_run is True
    assert after.sale[schema.TICKETS_LEFT] == 5


def test_claim_before_admission_is_an_error(
    stack: EmbeddedState, resources: StackResources, make_sale: Any
) -> None:
    with Fan(stack.settings, resources) as fan:
        with pytest.raises(FanStateError, match="call join"):
            fan.poll()
        fan.join(make_sale(on_sale_at=4_000_000_000.0).sale_id)
        with pytest.raises(FanStateError, match="no purchase URL"):
            fan.claim()


def test_split_purchase_url() -> None:
    base, token = split_purchase_url("http://127.0.0.1:8000/purchase?token=a.b.c")
    assert base == "http://127.0.0.1:8000"
    assert token == "a.b.c"
    with pytest.raises(FanStateError, match="no token"):
        split_purchase_url("http://127.0.0.1:8000/purchase")
