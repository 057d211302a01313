"""Connection settings shared by every client of the queue system."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_REGION = "us-east-1"
DEFAULT_STACK_NAME = "boxoffice-local"
# Emulators accept any key pair. These are used only when an endpoint URL is
# set and no credentials are configured, so a local run needs no AWS account.
EMULATOR_ACCESS_KEY = "test"
EMULATOR_SECRET_KEY = "test"


@dataclass(frozen=True)
class Settings:
    """Where the stack runs: endpoint, region, profile and stack name.

    The same settings object builds every client, so one code path talks to
    MiniStack on 127.0.0.1 or to the real AWS services.
    """

    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    profile: str | None = None
    stack_name: str = DEFAULT_STACK_NAME

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from the usual AWS variables, then apply overrides.

        Reads ``AWS_ENDPOINT_URL``, ``AWS_REGION`` (or ``AWS_DEFAULT_REGION``),
        ``AWS_PROFILE`` and ``BOXOFFICE_STACK``. An override of ``None`` keeps
        the value from the environment. With no region given anywhere, the
        profile's configured region applies, then ``us-east-1``.
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        profile = given.get("profile") or os.environ.get("AWS_PROFILE") or None
        region = (
            given.get("region")
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or _profile_region(profile)
            or DEFAULT_REGION
        )
        base = cls(
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
            region=region,
            profile=profile,
            stack_name=os.environ.get("BOXOFFICE_STACK") or DEFAULT_STACK_NAME,
        )
        return replace(base, **given)

    @property
    def is_local(self) -> bool:
        """Whether the endpoint is an emulator on this machine."""
        if not self.endpoint_url:
            return False
        host = self.endpoint_url.split("://", 1)[-1].split("/", 1)[0]
        host = host.rsplit(":", 1)[0].strip("[]")
        return host in {"127.0.0.1", "localhost", "::1"}


def _profile_region(profile: str | None) -> str | None:
    if not profile:
        return None
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=profile)
        region: str | None = session.get_config_variable("region")
    except botocore.exceptions.ProfileNotFound:
        return None
    return region
