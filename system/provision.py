"""Create the stack from the template: code upload, stack, config and sale."""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.exceptions import ClientError

from system import schema
from system.clients import make_client, make_session
from system.errors import StackNotReadyError
from system.package import build_forwarder_zip, code_digest
from system.sale import SaleConfig, put_sale
from system.settings import Settings
from system.stack import TEMPLATE_PATH, StackResources, describe_stack

logger = logging.getLogger(__name__)

STACK_TIMEOUT_SECONDS = 300
STACK_POLL_SECONDS = 1.0


def code_bucket_name(settings: Settings) -> str:
    """Return the name of the bucket that holds the forwarder's packages."""
    account = make_client(settings, "sts").get_caller_identity()["Account"]
    return f"boxoffice-code-{account}-{settings.region}"


def upload_forwarder(settings: Settings, bucket: str) -> str:
    """Upload the forwarder package and return its S3 key."""
    s3 = make_client(settings, "s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {
                "LocationConstraint": settings.region
            }
        s3.create_bucket(**kwargs)
    package = build_forwarder_zip()
    key = f"forwarder/{code_digest(package)}.zip"
    s3.put_object(Bucket=bucket, Key=key, Body=package)
    logger.info("Uploaded forwarder package s3://%s/%s", bucket, key)
    return key


def create_stack(
    settings: Settings, environment: str, code_bucket: str, code_key: str
) -> StackResources:
    """Create the stack from the template and wait until it is complete."""
    cloudformation = make_client(settings, "cloudformation")
    cloudformation.create_stack(
        StackName=settings.stack_name,
        TemplateBody=TEMPLATE_PATH.read_text(),
        Parameters=[
            {"ParameterKey": "EnvironmentName", "ParameterValue": environment},
            {"ParameterKey": "CodeBucket", "ParameterValue": code_bucket},
            {"ParameterKey": "CodeKey", "ParameterValue": code_key},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    wait_for_stack(settings)
    return describe_stack(settings)


def wait_for_stack(settings: Settings, timeout: float = STACK_TIMEOUT_SECONDS) -> str:
    """Wait until the stack leaves its in-progress state; return the final status."""
    cloudformation = make_client(settings, "cloudformation")
    deadline = time.monotonic() + timeout
    while True:
        stack = cloudformation.describe_stacks(StackName=settings.stack_name)["Stacks"][
            0
        ]
        status: str = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            if status.endswith("FAILED") or "ROLLBACK" in status:
                reason = stack.get("StackStatusReason", "no reason given")
                raise StackNotReadyError(
                    f"Stack {settings.stack_name!r} ended in {status}: {reason}"
                )
            return status
        if time.monotonic() > deadline:
            raise StackNotReadyError(
                f"Stack {settings.stack_name!r} is still {status} after "
                f"{timeout:.0f} s."
            )
        time.sleep(STACK_POLL_SECONDS)


def seed_config(settings: Settings, resources: StackResources) -> None:
    """Write what the forwarder reads at cold start into the config table."""
    table = (
        make_session(settings)
        .resource("dynamodb", endpoint_url=settings.endpoint_url)
        .Table(resources.config_table)
    )
    values = {
        "environment": resources.environment_name,
        "queue_table": resources.queue_table,
        "sales_table": resources.sales_table,
        "work_queue_url": resources.work_queue_url,
        "dead_letter_queue_url": resources.dead_letter_queue_url,
    }
    with table.batch_writer() as batch:
        for name, value in values.items():
            batch.put_item(Item={schema.CONFIG_NAME: name, schema.CONFIG_VALUE: value})


def configure_sale(
    settings: Settings, resources: StackResources, config: SaleConfig
) -> None:
    """Create or reset a sale on the stack."""
    table = (
        make_session(settings)
        .resource("dynamodb", endpoint_url=settings.endpoint_url)
        .Table(resources.sales_table)
    )
    put_sale(table, config)
    logger.info(
        "Configured sale %s: %d tickets, %d windows",
        config.sale_id,
        config.stock,
        config.window_count,
    )
