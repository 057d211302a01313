"""HTML pages of the ticketing service, rendered from Jinja2 templates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from system.ticketing import errors
from system.ticketing.errors import PurchaseRejectedError
from system.ticketing.service import OpenWindow

# The browser keeps the fan's Cognito identity id under this localStorage key.
FAN_ID_STORAGE_KEY = "boxoffice.fan_id"

_environment = Environment(
    loader=PackageLoader("system.ticketing", "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass(frozen=True)
class ClosedReason:
    """Text of the page for a purchase link that opens no purchase."""

    heading: str
    explanation: str
    advice: str


_REASONS = {
    errors.INVALID_TOKEN: ClosedReason(
        "This purchase link is not valid",
        "The link is incomplete, was changed, or was not issued by the box office.",
        "Go back to the queue page and open the purchase link it shows when it "
        "is your turn.",
    ),
    errors.WRONG_FAN: ClosedReason(
        "This purchase link belongs to another fan",
        "Each link is issued to the browser that joined the queue.",
        "Open the link in the browser you joined the queue from.",
    ),
    errors.REPLAY: ClosedReason(
        "This purchase link has already been used",
        "Each link buys once, and an order was already placed with this one.",
        "Go back to the queue page to see your order.",
    ),
    errors.WINDOW_CLOSED: ClosedReason(
        "Your purchase window has closed",
        "The time to buy ran out, or the window was given to the next fan.",
        "Go back to the queue page to see where you stand.",
    ),
}
_EXPIRED = ClosedReason(
    "Your purchase link has expired",
    "A purchase window stays open for a limited time, and this one has ended.",
    "Go back to the queue page to see where you stand.",
)
_UNKNOWN = ClosedReason(
    "This purchase cannot go ahead",
    "The box office turned the request down.",
    "Go back to the queue page and try again.",
)


def render_purchase(window: OpenWindow) -> str:
    """Render the purchase page of a claimed window."""
    closes_at = datetime.fromtimestamp(window.expires_at, UTC)
    return _environment.get_template("purchase.html").render(
        sale_id=window.claims.sale_id,
        max_tickets=window.max_tickets_per_order,
        expires_at=int(window.expires_at),
        closes_at_text=closes_at.strftime("%H:%M:%S UTC"),
        fan_id_storage_key=FAN_ID_STORAGE_KEY,
    )


def render_closed(rejection: PurchaseRejectedError) -> str:
    """Render the page that explains why a purchase link opens no purchase."""
    reason = _REASONS.get(rejection.code, _UNKNOWN)
    if rejection.expired:
        reason = _EXPIRED
    return _environment.get_template("closed.html").render(reason=reason)
