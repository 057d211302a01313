"""Errors of the synthetic probe."""

from __future__ import annotations

from system.errors import BoxOfficeError


class InvalidProbeConfigError(BoxOfficeError, ValueError):
    """A probe setting (deadline, stage name, interval) is out of range."""


class StageFailedError(BoxOfficeError):
    """A funnel stage answered, but not as a healthy funnel does."""


class StageTimedOutError(BoxOfficeError):
    """A funnel stage did not finish before its deadline."""


class NotSyntheticError(BoxOfficeError, RuntimeError):
    """A cleanup found a record that is not synthetic where it expected one."""
