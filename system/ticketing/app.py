"""The ticketing service's HTTP API and purchase page (FastAPI)."""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from system.ticketing import errors, pages
from system.ticketing.errors import PurchaseRejectedError, TicketingUnavailableError
from system.ticketing.service import PurchaseRequest, TicketingService

logger = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 128
RETRY_AFTER_SECONDS = 2
# The purchase page's URL carries the token: keep it out of caches and out of
# the Referer header of anything the page links to.
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def create_app(service: TicketingService) -> FastAPI:
    """Build the application around a ticketing service."""
    app = FastAPI(title="Box Office ticketing", docs_url=None, redoc_url=None)
    app.add_exception_handler(PurchaseRejectedError, _rejected)
    for failure in (TicketingUnavailableError, BotoCoreError, ClientError):
        app.add_exception_handler(failure, _unavailable)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/purchase", response_class=HTMLResponse)
    async def purchase_page(token: str = "", fan: str = "") -> HTMLResponse:
        try:
            window = await run_in_threadpool(service.open_window, token, fan or None)
        except PurchaseRejectedError as exc:
            return HTMLResponse(
                pages.render_closed(exc), status_code=exc.status, headers=PAGE_HEADERS
            )
        return HTMLResponse(pages.render_purchase(window), headers=PAGE_HEADERS)

    @app.post("/api/claim")
    async def claim(request: Request) -> dict[str, Any]:
        body = await _json_object(request)
        token, fan_id = _text(body, "token"), _text(body, "fan_id")
        expires_at = await run_in_threadpool(service.claim, token, fan_id)
        return {"claimed": True, "expires_at": expires_at}

    @app.post("/api/purchase")
    async def purchase(request: Request) -> dict[str, Any]:
        body = await _json_object(request)
        order = PurchaseRequest(
            token=_text(body, "token"),
            fan_id=_text(body, "fan_id"),
            quantity=_quantity(body),
            idempotency_key=_idempotency_key(request),
        )
        receipt = await run_in_threadpool(service.purchase, order)
        return receipt.as_json()

    @app.get("/api/orders")
    async def orders(sale: str = "") -> dict[str, Any]:
        if not sale:
            raise PurchaseRejectedError(
                400,
                errors.INVALID_REQUEST,
                "Name the sale to count: GET /api/orders?sale=SALE_ID.",
            )
        totals = await run_in_threadpool(service.order_totals, sale)
        return {
            "sale_id": totals.sale_id,
            "orders": totals.orders,
            "tickets_sold": totals.tickets_sold,
            "synthetic_orders": totals.synthetic_orders,
        }

    return app


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):
        body = None
    if not isinstance(body, dict):
        raise PurchaseRejectedError(
            400, errors.INVALID_REQUEST, "The request body must be a JSON object."
        )
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise PurchaseRejectedError(
            400,
            errors.INVALID_REQUEST,
            f"The request body needs {name!r} as a non-empty string.",
        )
    return value


def _quantity(body: dict[str, Any]) -> int:
    value = body.get("quantity")
    # bool is an int in Python, but true is no ticket count. The range is
    # checked against the sale's limit once the token is verified.
    if not isinstance(value, int) or isinstance(value, bool):
        raise PurchaseRejectedError(
            422,
            errors.INVALID_QUANTITY,
            f"The quantity {value!r} is invalid: send a whole number of tickets.",
        )
    return value


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise PurchaseRejectedError(
            400,
            errors.INVALID_REQUEST,
            "The Idempotency-Key header must hold 1 to "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
        )
    return key


async def _rejected(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PurchaseRejectedError)
    return JSONResponse(exc.as_json(), status_code=exc.status)


async def _unavailable(request: Request, exc: Exception) -> Response:
    logger.error(
        "Failed to respond to %s %s: %s", request.method, request.url.path, exc
    )
    return JSONResponse(
        {
            "error": errors.UNAVAILABLE,
            "message": "The ticketing service could not reach its tables. "
            f"Retry in {RETRY_AFTER_SECONDS} seconds with the same Idempotency-Key.",
        },
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
