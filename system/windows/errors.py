"""Errors of the window assignment processor."""

from __future__ import annotations

from system.errors import BoxOfficeError


class ProcessorConfigError(BoxOfficeError, ValueError):
    """A setting the processor needs at start is missing or invalid."""


class MalformedMessageError(BoxOfficeError, ValueError):
    """A work queue message body is not the JSON object the forwarder sends."""
