"""Rejections of the ticketing service, each with its HTTP status and code."""

from __future__ import annotations

from typing import Any

from system.errors import BoxOfficeError

# Error codes of the HTTP API, also used as the ``result`` metric label.
INVALID_REQUEST = "invalid_request"
INVALID_TOKEN = "invalid_token"
REPLAY = "replay"
WRONG_FAN = "wrong_fan"
WINDOW_CLOSED = "window_closed"
SOLD_OUT = "sold_out"
NOT_ENOUGH_TICKETS = "not_enough_tickets"
INVALID_QUANTITY = "invalid_quantity"
UNAVAILABLE = "unavailable"


class PurchaseRejectedError(BoxOfficeError):
    """A claim or purchase the service turned down, and why.

    ``code`` is the ``error`` field of the JSON response, ``status`` its HTTP
    status and ``details`` extra fields such as ``tickets_left``.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        expired: bool = False,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        # An expired token is still an invalid_token for API clients, but the
        # purchase page explains expiry apart from a forged link.
        self.expired = expired
        self.details = details

    def as_json(self) -> dict[str, Any]:
        """Return the body of the HTTP response."""
        return {"error": self.code, "message": self.message, **self.details}


class TicketingUnavailableError(BoxOfficeError, RuntimeError):
    """The service could not finish a request against its tables."""
