"""Errors of the queue system, each with the value at fault and the fix."""

from __future__ import annotations


class BoxOfficeError(Exception):
    """Base class of every error the suite raises on purpose."""


class StackNotFoundError(BoxOfficeError, LookupError):
    """The named CloudFormation stack does not exist or has no outputs."""


class StackNotReadyError(BoxOfficeError, RuntimeError):
    """The stack exists but is not in a usable state."""


class EmbeddedStackError(BoxOfficeError, RuntimeError):
    """The embedded stack could not be started, reached or stopped."""


class SaleNotFoundError(BoxOfficeError, LookupError):
    """No sale with the given id is configured on the stack."""


class InvalidSaleError(BoxOfficeError, ValueError):
    """A sale configuration value is out of range."""


class InvalidTokenError(BoxOfficeError, ValueError):
    """A purchase token is forged, tampered, expired, used or someone else's."""


class ExpiredTokenError(InvalidTokenError):
    """A purchase token is past its expiry time."""


class WrongFanError(InvalidTokenError):
    """A valid purchase token was presented by a fan it was not issued to."""


class SoldOutError(BoxOfficeError):
    """The sale has no tickets left for this order."""


class ExporterError(BoxOfficeError, RuntimeError):
    """A metrics exporter could not be installed or could not listen."""


class PrometheusError(BoxOfficeError, RuntimeError):
    """A local Prometheus could not be configured, started or reached."""


class ForwarderConfigError(BoxOfficeError, LookupError):
    """The forwarder cannot find its config table or a setting in it."""


# Errors of the fan client (system/fan.py).


class FanStateError(BoxOfficeError, RuntimeError):
    """The fan is not at the point of the funnel the call needs."""


class TicketingError(BoxOfficeError, RuntimeError):
    """The ticketing service could not be reached or returned an error."""


class TicketingRejectedError(BoxOfficeError):
    """The ticketing service rejected a claim or purchase with an HTTP 4xx."""

    def __init__(self, status_code: int, error: str, message: str = "") -> None:
        text = f"The ticketing service rejected the request: HTTP {status_code} "
        text += f"{error!r}."
        if message:
            text += f" {message}"
        super().__init__(text)
        self.status_code = status_code
        self.error = error
