"""Errors of the scheduled monitor and its notifiers."""

from __future__ import annotations

from system.errors import BoxOfficeError


class NotificationError(BoxOfficeError, RuntimeError):
    """A webhook could not be set up, or did not accept an alert."""


class InvalidMonitorConfigError(BoxOfficeError, ValueError):
    """A monitor setting (interval, alert window, port) is out of range."""
