"""The shared stack: the forwarder function, the deploy records and the roles."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from system.clients import make_client
from system.deploy.changeset import ResourceChange, apply_template, stack_status
from system.errors import StackNotReadyError
from system.settings import Settings
from system.stack import READY_STATUSES

logger = logging.getLogger(__name__)

SHARED_STACK_NAME = "boxoffice-shared"
SHARED_TEMPLATE_PATH = Path(__file__).with_name("shared.yaml")
# Parameters an update keeps unless they are given again: the function's
# code changes through published versions, not through this stack.
KEPT_PARAMETERS = ("CodeKey", "DeployPrincipalArn")


@dataclass(frozen=True)
class SharedResources:
    """Names and ARNs from the shared stack's outputs."""

    stack_name: str
    code_bucket: str
    deployments_table: str
    releases_table: str
    function_name: str
    function_arn: str
    deploy_role_arn: str
    cloudformation_role_arn: str


def describe_shared(settings: Settings) -> SharedResources | None:
    """Return the shared stack's resources, or ``None`` when it does not exist."""
    cloudformation = make_client(settings, "cloudformation")
    status = stack_status(cloudformation, SHARED_STACK_NAME)
    if status is None:
        return None
    if status not in READY_STATUSES:
        raise StackNotReadyError(
            f"The shared stack {SHARED_STACK_NAME!r} is {status}. Wait until it "
            "is complete, or run `boxoffice deploy --shared` to repair it."
        )
    stack = cloudformation.describe_stacks(StackName=SHARED_STACK_NAME)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return SharedResources(
        stack_name=SHARED_STACK_NAME,
        code_bucket=outputs["CodeBucket"],
        deployments_table=outputs["DeploymentsTableName"],
        releases_table=outputs["ReleasesTableName"],
        function_name=outputs["ForwarderFunctionName"],
        function_arn=outputs["ForwarderFunctionArn"],
        deploy_role_arn=outputs["DeployRoleArn"],
        cloudformation_role_arn=outputs["CloudFormationRoleArn"],
    )


def apply_shared(
    settings: Settings,
    code_bucket: str,
    code_key: str | None = None,
    *,
    deploy_principal: str | None = None,
    report: Callable[[str, list[ResourceChange]], None] = lambda stack, changes: None,
) -> tuple[SharedResources, list[ResourceChange]]:
    """Create or update the shared stack from ``shared.yaml``.

    ``code_key`` is the package the function is created with; an update
    keeps the function's code and the deploy principal unless they are given.
    """
    parameters = {"CodeBucket": code_bucket}
    if code_key is not None:
        parameters["CodeKey"] = code_key
    if deploy_principal is not None:
        parameters["DeployPrincipalArn"] = deploy_principal
    changes = apply_template(
        make_client(settings, "cloudformation"),
        SHARED_STACK_NAME,
        SHARED_TEMPLATE_PATH.read_text(),
        parameters,
        keep_previous=KEPT_PARAMETERS,
        change_set_name="boxoffice-shared",
        report=report,
    )
    resources = describe_shared(settings)
    assert resources is not None  # apply_template raised if it failed
    return resources, changes


def template_is_current(settings: Settings) -> bool:
    """Return whether the deployed shared stack runs this checkout's template."""
    cloudformation = make_client(settings, "cloudformation")
    deployed = cloudformation.get_template(StackName=SHARED_STACK_NAME)
    body = deployed.get("TemplateBody", "")
    return isinstance(body, str) and body == SHARED_TEMPLATE_PATH.read_text()
