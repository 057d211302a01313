"""Sale configuration: what a sale may be created with."""

from __future__ import annotations

import math
from typing import Any

import pytest

from system import embedded, provision
from system.errors import InvalidSaleError
from system.sale import SaleConfig


@pytest.mark.parametrize(
    "sale_id", ["", "Summer Tour 2027", "tournée-été", "#forwarder", "x" * 65]
)
def test_sale_id_rejected(sale_id: str) -> None:
    with pytest.raises(InvalidSaleError, match="Sale id"):
        SaleConfig(sale_id=sale_id)


@pytest.mark.parametrize(
    "fields",
    [
        {"session_seconds": math.nan},
        {"session_seconds": math.inf},
        {"stock": 10**41},
        {"stock": -1},
        {"window_count": 0},
        {"on_sale_at": 1e300},
        {"claim_timeout_seconds": 200, "session_seconds": 100},
    ],
)
def test_sale_setting_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidSaleError):
        SaleConfig(**fields)


def test_sale_id_accepted_by_forwarder_rule() -> None:
    assert SaleConfig(sale_id="tour-2027_Leg.2").sale_id == "tour-2027_Leg.2"


def test_existing_sale_not_reset(
    stack: embedded.EmbeddedState, resources: Any, make_sale: Any
) -> None:
    sale = make_sale(stock=10)
    with pytest.raises(InvalidSaleError, match="already exists"):
        provision.configure_sale(stack.settings, resources, SaleConfig(sale.sale_id))


def test_token_secret_private(stack: embedded.EmbeddedState) -> None:
    assert stack.secret_path.stat().st_mode & 0o777 == 0o600
