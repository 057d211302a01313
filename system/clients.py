"""boto3 sessions and clients built from one ``Settings`` object."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from system.settings import EMULATOR_ACCESS_KEY, EMULATOR_SECRET_KEY, Settings

# Standard retry mode backs off on throttling, which both DynamoDB and an
# overloaded emulator answer with.
RETRY_ATTEMPTS = 5
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30


def make_session(settings: Settings) -> boto3.session.Session:
    """Return a boto3 session for the settings' profile and region."""
    kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.profile:
        kwargs["profile_name"] = settings.profile
    elif settings.is_local and not _has_credentials():
        kwargs["aws_access_key_id"] = EMULATOR_ACCESS_KEY
        kwargs["aws_secret_access_key"] = EMULATOR_SECRET_KEY
    return boto3.session.Session(**kwargs)


def make_client(
    settings: Settings, service: str, *, max_pool_connections: int = 10
) -> Any:
    """Return a boto3 client for ``service`` aimed at the settings' endpoint."""
    config = Config(
        retries={"max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=max_pool_connections,
    )
    return make_session(settings).client(
        service, endpoint_url=settings.endpoint_url, config=config
    )


@lru_cache(maxsize=64)
def cached_client(settings: Settings, service: str) -> Any:
    """Return one shared client per settings and service in this process."""
    return make_client(settings, service)


def _has_credentials() -> bool:
    return bool(os.environ.get("AWS_ACCESS_KEY_ID"))
