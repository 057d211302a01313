"""The deployed stack's resources, read from its CloudFormation outputs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from system.clients import make_client
from system.errors import StackNotFoundError, StackNotReadyError
from system.settings import Settings

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).with_name("template.yaml")
READY_STATUSES = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}
)


@dataclass(frozen=True)
class StackResources:
    """Names and URLs of the stack's tables, queues and identity pool."""

    stack_name: str
    environment_name: str
    queue_table: str
    queue_table_stream_arn: str
    sales_table: str
    windows_table: str
    orders_table: str
    config_table: str
    work_queue_url: str
    work_queue_arn: str
    work_dead_letter_queue_url: str
    dead_letter_queue_url: str
    forwarder_function: str
    identity_pool_id: str
    fan_role_arn: str

    @classmethod
    def from_outputs(cls, stack_name: str, outputs: dict[str, str]) -> StackResources:
        """Build the resources from a stack's outputs, keyed by output name."""
        values: dict[str, str] = {"stack_name": stack_name}
        missing = []
        for field in fields(cls):
            if field.name == "stack_name":
                continue
            key = _output_key(field.name)
            if key in outputs:
                values[field.name] = outputs[key]
            else:
                missing.append(key)
        if missing:
            raise StackNotReadyError(
                f"Stack {stack_name!r} has no output {', '.join(missing)}. "
                "Deploy it from system/template.yaml with `boxoffice deploy`."
            )
        return cls(**values)


def describe_stack(settings: Settings) -> StackResources:
    """Read the stack named in the settings and return its resources.

    Raises ``StackNotFoundError`` when the stack does not exist and
    ``StackNotReadyError`` when it is still being created or has failed.
    """
    cloudformation = make_client(settings, "cloudformation")
    try:
        response = cloudformation.describe_stacks(StackName=settings.stack_name)
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise StackNotFoundError(
                f"Stack {settings.stack_name!r} was not found in region "
                f"{settings.region!r}. Check --stack and --region, or start the "
                "embedded stack with `boxoffice up`."
            ) from exc
        raise
    except NoCredentialsError as exc:
        raise StackNotFoundError(
            f"No AWS credentials were found to read stack {settings.stack_name!r} "
            f"in region {settings.region!r}. Pass --profile, or set AWS_PROFILE "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        ) from exc
    except BotoCoreError as exc:
        where = settings.endpoint_url or f"AWS region {settings.region}"
        raise StackNotFoundError(
            f"Could not read stack {settings.stack_name!r} from {where}: {exc}"
        ) from exc
    stack = response["Stacks"][0]
    status = stack["StackStatus"]
    if status not in READY_STATUSES:
        raise StackNotReadyError(
            f"Stack {settings.stack_name!r} is {status}; wait until it is "
            "CREATE_COMPLETE or UPDATE_COMPLETE."
        )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return StackResources.from_outputs(settings.stack_name, outputs)


def _output_key(field_name: str) -> str:
    key = "".join(part.capitalize() for part in field_name.split("_"))
    if field_name.endswith(("_table", "_function")):
        key += "Name"
    return key
