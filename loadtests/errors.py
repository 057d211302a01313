"""Errors of the spike simulation, each with the value at fault and the fix."""

from __future__ import annotations

from system.errors import BoxOfficeError


class SpikeConfigError(BoxOfficeError, ValueError):
    """A spike option, arrival file or thresholds file is invalid."""


class PreflightError(BoxOfficeError, RuntimeError):
    """The target stack cannot take load: missing, unreachable or no credentials."""


class LoadGeneratorError(BoxOfficeError, RuntimeError):
    """Locust could not be started or stopped, or ended without a result."""
