"""The stack a spike runs against, and the checks made before any load is sent.

With no target options the spike uses the embedded stack, starting it when
none is up and stopping afterwards only what it started. With ``--stack`` it
reads a deployed stack's CloudFormation outputs. Either way the preflight
checks credentials, the stack and every endpoint before a single fan arrives.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from loadtests.errors import PreflightError
from loadtests.plan import Targets
from system import embedded
from system.aws_options import settings_from_args, targets_deployed_stack
from system.clients import make_client, make_session
from system.settings import Settings
from system.stack import StackResources, describe_stack

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 5.0
# A stack output that names the ticketing service, when the template has one.
TICKETING_OUTPUT = "TicketingUrl"


@dataclass
class Target:
    """A stack ready for a spike, and whether this run started it."""

    settings: Settings
    resources: StackResources
    ticketing_url: str | None
    description: str
    state: embedded.EmbeddedState | None = None
    started_here: bool = False

    def targets(self) -> Targets:
        """Return what the fans need to reach the stack."""
        return Targets(
            region=self.settings.region,
            identity_pool_id=self.resources.identity_pool_id,
            queue_table=self.resources.queue_table,
            sales_table=self.resources.sales_table,
            endpoint_url=self.settings.endpoint_url,
            ticketing_url=self.ticketing_url,
        )

    def close(self) -> list[str]:
        """Stop the embedded stack if this run started it; return what stopped."""
        if self.started_here and self.state is not None:
            return embedded.stop(self.state)
        return []


def open_target(args: argparse.Namespace, progress: Callable[[str], None]) -> Target:
    """Return the deployed stack the options name, or the embedded stack."""
    if targets_deployed_stack(args):
        return _deployed(args)
    state = embedded.running_state(args.home)
    started = False
    if state is None:
        progress("Starting the embedded stack")
        state = embedded.up(home=args.home, progress=progress)
        started = True
    else:
        progress(f"Using the embedded stack already up at {state.endpoint_url}")
    return Target(
        settings=state.settings,
        resources=embedded.resources(state),
        ticketing_url=state.ticketing_url,
        description=f"embedded stack at {state.endpoint_url}",
        state=state,
        started_here=started,
    )


def preflight(target: Target) -> list[str]:
    """Check credentials and every endpoint; return warnings that do not stop.

    Raises ``PreflightError`` for missing credentials, a table the stack's
    outputs name but the endpoint does not know, or an endpoint that does not
    respond within a few seconds.
    """
    warnings = []
    settings = target.settings
    require_credentials(settings)
    dynamodb = make_client(settings, "dynamodb", max_pool_connections=2)
    for table in (target.resources.queue_table, target.resources.sales_table):
        try:
            dynamodb.describe_table(TableName=table)
        except (BotoCoreError, ClientError) as exc:
            raise PreflightError(
                f"DynamoDB table {table!r} of stack {settings.stack_name!r} could "
                f"not be reached: {exc}. Check the credentials and the region."
            ) from exc
    cognito = make_client(settings, "cognito-identity").meta.endpoint_url
    _check_tcp(cognito, "the Cognito identity endpoint")
    if target.ticketing_url:
        _check_http(f"{target.ticketing_url.rstrip('/')}/healthz")
    else:
        warnings.append(
            "No ticketing URL is known (--ticketing-url), so it was not checked; "
            "fans follow the purchase URLs the stack gives them."
        )
    state = target.state
    if state is not None and not _processor_running(state):
        warnings.append(
            "The window processor of the embedded stack is not running; no fan "
            "will be admitted."
        )
    return warnings


def require_credentials(settings: Settings) -> None:
    """Raise ``PreflightError`` unless the settings find AWS credentials.

    botocore looks for them before it sends anything, so a run without them
    stops here without a request leaving the machine.
    """
    try:
        credentials = make_session(settings).get_credentials()
    except BotoCoreError as exc:  # a named profile that does not exist
        raise PreflightError(f"Cannot load AWS credentials: {exc}") from exc
    if credentials is None:
        raise PreflightError(
            "No AWS credentials were found for "
            f"{settings.endpoint_url or 'region ' + settings.region}. Pass "
            "--profile, or set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY."
        )


def _deployed(args: argparse.Namespace) -> Target:
    settings = settings_from_args(args)
    require_credentials(settings)
    resources = describe_stack(settings)
    ticketing = (
        args.ticketing_url
        or os.environ.get("BOXOFFICE_TICKETING_URL")
        or _ticketing_output(settings)
    )
    where = settings.endpoint_url or f"region {settings.region}"
    return Target(
        settings=settings,
        resources=resources,
        ticketing_url=ticketing,
        description=f"stack {settings.stack_name} in {where}",
    )


def _ticketing_output(settings: Settings) -> str | None:
    cloudformation = make_client(settings, "cloudformation")
    stack = cloudformation.describe_stacks(StackName=settings.stack_name)["Stacks"][0]
    for output in stack.get("Outputs", []):
        if output.get("OutputKey") == TICKETING_OUTPUT:
            return str(output["OutputValue"])
    return None


def _check_tcp(url: str, what: str) -> None:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection(
            (parts.hostname or "", port), timeout=CHECK_TIMEOUT_SECONDS
        ):
            return
    except OSError as exc:
        raise PreflightError(
            f"Cannot connect to {what} at {url}: {exc}. Check the region or "
            "--endpoint-url."
        ) from exc


def _check_http(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as response:
            if response.status == 200:
                return
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise PreflightError(
            f"The ticketing service at {url} did not respond: {exc}. Start it, or "
            "pass the right --ticketing-url."
        ) from exc
    raise PreflightError(
        f"The ticketing service at {url} returned HTTP {status}, not 200."
    )


def _processor_running(state: embedded.EmbeddedState) -> bool:
    pid = state.pids.get("processor")
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
