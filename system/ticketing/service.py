"""Claims and purchases: token checks, the sale transaction and its outcomes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitors.metrics import TicketingMetrics
from system import schema
from system.errors import ExpiredTokenError, InvalidTokenError, WrongFanError
from system.sale import DEFAULT_MAX_TICKETS_PER_ORDER
from system.ticketing import errors
from system.ticketing.errors import PurchaseRejectedError, TicketingUnavailableError
from system.ticketing.store import (
    FAN,
    ORDER,
    WINDOW,
    OrderRecord,
    OrderTotals,
    TicketingTables,
    TransactionConflictError,
)
from system.tokens import PurchaseClaims, verify, verify_signature

logger = logging.getLogger(__name__)

# Concurrent buyers of the same sale item can cancel each other's
# transactions on AWS (TransactionConflict); each retry waits a little longer.
MAX_TRANSACTION_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = 0.05
# The metric label of a request whose token named no sale we can trust.
UNKNOWN_SALE = "unknown"


@dataclass(frozen=True)
class PurchaseRequest:
    """One POST /api/purchase, after the body has been parsed."""

    token: str
    fan_id: str
    quantity: int
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A completed purchase, as the API returns it."""

    order_id: str
    quantity: int
    tickets_left: int
    synthetic: bool
    dry_run: bool

    def as_json(self) -> dict[str, Any]:
        """Return the body of the HTTP response."""
        return {
            "order_id": self.order_id,
            "quantity": self.quantity,
            "tickets_left": self.tickets_left,
            "synthetic": self.synthetic,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class OpenWindow:
    """A claimed window, with what the purchase page shows."""

    claims: PurchaseClaims
    expires_at: float  # epoch seconds
    max_tickets_per_order: int


class TicketingService:
    """Verify purchase tokens and sell from the stock, never more than it holds."""

    def __init__(
        self,
        tables: TicketingTables,
        secret: bytes,
        metrics: TicketingMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tables = tables
        self._secret = secret
        self._metrics = metrics
        self._clock = clock

    def open_window(self, token: str, fan_id: str | None) -> OpenWindow:
        """Verify the token of a purchase page, claim its window and return it.

        Without ``fan_id`` the page trusts the token's subject: whoever holds
        the link may open the page, but only the fan can buy.
        """
        claims = self._verify(token, fan_id) if fan_id else self._verify_holder(token)
        sale = self._require_sale(claims)
        expires_at = self._claim(claims)
        return OpenWindow(
            claims=claims,
            expires_at=expires_at,
            max_tickets_per_order=_max_per_order(sale),
        )

    def claim(self, token: str, fan_id: str) -> float:
        """Mark the token's window claimed; return when the window closes."""
        return self._claim(self._verify(token, fan_id))

    def purchase(self, request: PurchaseRequest) -> Receipt:
        """Sell the requested tickets, or raise ``PurchaseRejectedError``."""
        started = time.perf_counter()
        sale_label = UNKNOWN_SALE
        synthetic = False
        result = "error"
        try:
            claims = self._verify(request.token, request.fan_id)
            sale_label, synthetic = claims.sale_id, claims.synthetic
            receipt = self._purchase(claims, request)
            result = "ok"
            return receipt
        except PurchaseRejectedError as exc:
            result = exc.code
            raise
        finally:
            self._metrics.purchases.labels(
                sale=sale_label, result=result, synthetic=str(synthetic).lower()
            ).inc()
            self._metrics.purchase_latency.labels(result=result).observe(
                time.perf_counter() - started
            )

    def order_totals(self, sale_id: str) -> OrderTotals:
        """Count the sale's orders from the orders table."""
        return self._tables.order_totals(sale_id)

    def _purchase(self, claims: PurchaseClaims, request: PurchaseRequest) -> Receipt:
        sale = self._require_sale(claims)
        _check_quantity(claims, request.quantity, _max_per_order(sale))
        if claims.synthetic:
            return self._dry_run(claims, request, int(sale[schema.TICKETS_LEFT]))
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            try:
                failed = self._tables.write_purchase(
                    claims, request.quantity, request.idempotency_key, self._clock()
                )
            except TransactionConflictError as exc:
                _back_off(claims, attempt, exc)
                continue
            if not failed:
                return self._sold(claims, request.quantity)
            if ORDER in failed:
                return self._existing_order(claims, request)
            if WINDOW in failed or FAN in failed:
                # At a sell-out the window processor closes every window, so
                # a purchase racing it hears "sold out", which is the truth.
                if self._tables.tickets_left(claims.sale_id) == 0:
                    raise self._sell_out(claims)
                raise self._window_closed(claims)
            self._reject_short_stock(claims, request.quantity)
            # The stock grew since the attempt because the sale was reset, so
            # the order may fit now.
        raise TicketingUnavailableError(
            f"The purchase for sale {claims.sale_id!r} conflicted with other "
            f"writes {MAX_TRANSACTION_ATTEMPTS} times."
        )

    def _reject_short_stock(self, claims: PurchaseClaims, quantity: int) -> None:
        left = self._tables.tickets_left(claims.sale_id)
        if left <= 0:
            raise self._sell_out(claims)
        if left < quantity:
            _log_rejected(claims, errors.NOT_ENOUGH_TICKETS)
            raise PurchaseRejectedError(
                409,
                errors.NOT_ENOUGH_TICKETS,
                f"Only {left} tickets are left, but the order asks for "
                f"{quantity}. Choose {left} or fewer and buy again.",
                tickets_left=left,
            )

    def _sold(self, claims: PurchaseClaims, quantity: int) -> Receipt:
        now = self._clock()
        left = self._tables.tickets_left(claims.sale_id)
        if left <= 0 and self._tables.mark_sold_out(claims.sale_id, now):
            logger.info("Sale %s sold out", claims.sale_id)
        self._metrics.tickets_sold.labels(sale=claims.sale_id).inc(quantity)
        logger.info(
            "Sold %d tickets: sale %s window %s order %s, %d left",
            quantity,
            claims.sale_id,
            claims.window_id,
            claims.token_id,
            left,
        )
        return Receipt(claims.token_id, quantity, left, False, False)

    def _dry_run(
        self, claims: PurchaseClaims, request: PurchaseRequest, tickets_left: int
    ) -> Receipt:
        # A synthetic fan passes every check a real fan does, but its order is
        # a dry run: the stock and the sold count are never touched.
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            try:
                failed = self._tables.write_dry_run(
                    claims, request.quantity, request.idempotency_key, self._clock()
                )
            except TransactionConflictError as exc:
                _back_off(claims, attempt, exc)
                continue
            if ORDER in failed:
                return self._existing_order(claims, request)
            if failed:
                raise self._window_closed(claims)
            logger.info(
                "Recorded synthetic order: sale %s window %s order %s, %d tickets",
                claims.sale_id,
                claims.window_id,
                claims.token_id,
                request.quantity,
            )
            return Receipt(claims.token_id, request.quantity, tickets_left, True, True)
        raise TicketingUnavailableError(
            f"The synthetic purchase for sale {claims.sale_id!r} conflicted with "
            f"other writes {MAX_TRANSACTION_ATTEMPTS} times."
        )

    def _existing_order(
        self, claims: PurchaseClaims, request: PurchaseRequest
    ) -> Receipt:
        order = self._tables.get_order(claims.token_id)
        if order is not None and _same_request(order, claims, request):
            logger.info(
                "Returned existing order on retry: sale %s window %s order %s",
                claims.sale_id,
                claims.window_id,
                order.order_id,
            )
            return Receipt(
                order.order_id,
                order.quantity,
                self._tables.tickets_left(claims.sale_id),
                order.synthetic,
                order.dry_run,
            )
        raise self._replay(claims)

    def _sell_out(self, claims: PurchaseClaims) -> PurchaseRejectedError:
        now = self._clock()
        failed = self._tables.write_sold_out(claims, now)
        if failed:
            # The window processor freed the window first; nothing is left to undo.
            logger.info(
                "Window %s of sale %s was already closed at sell-out (%s)",
                claims.window_id,
                claims.sale_id,
                ", ".join(sorted(failed)),
            )
        if self._tables.mark_sold_out(claims.sale_id, now):
            logger.info("Sale %s sold out", claims.sale_id)
        _log_rejected(claims, errors.SOLD_OUT)
        return PurchaseRejectedError(
            409,
            errors.SOLD_OUT,
            "The sale is sold out: every ticket has been sold. Your window is closed.",
        )

    def _claim(self, claims: PurchaseClaims) -> float:
        expires_at = self._tables.claim_window(claims, self._clock())
        if expires_at is None:
            if self._tables.get_order(claims.token_id) is not None:
                raise self._replay(claims)
            raise self._window_closed(claims)
        logger.info(
            "Window %s of sale %s claimed (order %s)",
            claims.window_id,
            claims.sale_id,
            claims.token_id,
        )
        return expires_at

    def _verify(self, token: str, fan_id: str) -> PurchaseClaims:
        try:
            return verify(self._secret, token, fan_id=fan_id)
        except WrongFanError as exc:
            logger.info("Rejected a purchase token presented by another fan")
            raise PurchaseRejectedError(
                403,
                errors.WRONG_FAN,
                "This purchase link was issued to another fan. Open the link "
                "your own queue page gave you.",
            ) from exc
        except InvalidTokenError as exc:
            raise _invalid_token(exc) from exc

    def _verify_holder(self, token: str) -> PurchaseClaims:
        try:
            return verify_signature(self._secret, token)
        except InvalidTokenError as exc:
            raise _invalid_token(exc) from exc

    def _require_sale(self, claims: PurchaseClaims) -> dict[str, Any]:
        sale = self._tables.get_sale(claims.sale_id)
        if sale is None:
            _log_rejected(claims, errors.INVALID_TOKEN)
            raise PurchaseRejectedError(
                403,
                errors.INVALID_TOKEN,
                f"The purchase token names sale {claims.sale_id!r}, which is not "
                "on sale here.",
            )
        return sale

    def _window_closed(self, claims: PurchaseClaims) -> PurchaseRejectedError:
        _log_rejected(claims, errors.WINDOW_CLOSED)
        return PurchaseRejectedError(
            403,
            errors.WINDOW_CLOSED,
            "Your purchase window is closed: its time ran out or it was given to "
            "the next fan. Go back to the queue page to see where you stand.",
        )

    def _replay(self, claims: PurchaseClaims) -> PurchaseRejectedError:
        _log_rejected(claims, errors.REPLAY)
        return PurchaseRejectedError(
            403,
            errors.REPLAY,
            "This purchase link has already been used; each link buys once. "
            "A retry must send the Idempotency-Key of the first request.",
        )


def _check_quantity(claims: PurchaseClaims, quantity: int, limit: int) -> None:
    if not 1 <= quantity <= limit:
        _log_rejected(claims, errors.INVALID_QUANTITY)
        raise PurchaseRejectedError(
            422,
            errors.INVALID_QUANTITY,
            f"The quantity {quantity} is invalid: one order holds 1 to {limit} "
            "tickets.",
        )


def _back_off(claims: PurchaseClaims, attempt: int, exc: Exception) -> None:
    logger.info(
        "Purchase for sale %s window %s conflicted (%s); retrying",
        claims.sale_id,
        claims.window_id,
        exc,
    )
    time.sleep(RETRY_BACKOFF_SECONDS * (attempt + 1))


def _invalid_token(exc: InvalidTokenError) -> PurchaseRejectedError:
    expired = isinstance(exc, ExpiredTokenError)
    logger.info("Rejected a purchase token: %s", exc)
    return PurchaseRejectedError(
        403,
        errors.INVALID_TOKEN,
        f"{exc} Open the purchase link your queue page gave you.",
        expired=expired,
    )


def _same_request(
    order: OrderRecord, claims: PurchaseClaims, request: PurchaseRequest
) -> bool:
    return (
        request.idempotency_key is not None
        and order.idempotency_key == request.idempotency_key
        and order.fan_id == claims.fan_id
    )


def _max_per_order(sale: dict[str, Any]) -> int:
    return int(sale.get(schema.MAX_TICKETS_PER_ORDER, DEFAULT_MAX_TICKETS_PER_ORDER))


def _log_rejected(claims: PurchaseClaims, code: str) -> None:
    logger.info(
        "Rejected purchase (%s): sale %s window %s order %s",
        code,
        claims.sale_id,
        claims.window_id,
        claims.token_id,
    )
