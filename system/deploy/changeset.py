"""Create or update a CloudFormation stack through a change set.

A change set lists what an update will add, modify or remove before it runs.
``apply_template`` creates one, reports its changes, executes it and waits.
When the update fails, CloudFormation rolls the stack back to its previous
state and ``StackUpdateError`` carries the resources' failure reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from system.deploy.errors import DeployError, StackUpdateError

logger = logging.getLogger(__name__)

STACK_TIMEOUT_SECONDS = 900
CHANGE_SET_TIMEOUT_SECONDS = 300
POLL_INTERVAL_SECONDS = 1.0
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
# CloudFormation's reasons for a change set that would change nothing.
NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
# A stack whose creation failed and was rolled back cannot be updated, so it
# is deleted and created again.
FAILED_CREATE_STATUSES = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED"})


@dataclass(frozen=True)
class ResourceChange:
    """One line of a change set: what happens to which resource."""

    action: str  # Add, Modify, Remove, Import or Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True, False, Conditional, or "" for Add and Remove

    def describe(self) -> str:
        """Return the change as one line for the terminal."""
        line = f"{self.action:<7} {self.resource_type:<40} {self.logical_id}"
        if self.replacement in ("True", "Conditional"):
            line += f" (replacement: {self.replacement})"
        return line


def stack_status(cloudformation: Any, stack_name: str) -> str | None:
    """Return the stack's status, or ``None`` when there is no such stack."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return str(stacks[0]["StackStatus"])


def previous_parameters(cloudformation: Any, stack_name: str) -> set[str]:
    """Return the names of the parameters the stack was last deployed with."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {parameter["ParameterKey"] for parameter in stack.get("Parameters", [])}


def apply_template(
    cloudformation: Any,
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str],
    *,
    keep_previous: tuple[str, ...] = (),
    role_arn: str | None = None,
    change_set_name: str,
    report: Callable[[str, list[ResourceChange]], None] = lambda stack, changes: None,
) -> list[ResourceChange]:
    """Create or update ``stack_name`` from ``template_body``; return the changes.

    ``keep_previous`` names parameters that keep their deployed value when
    the stack exists and they are not in ``parameters``. ``report`` receives
    the stack name and the changes before they run. Returns an empty list,
    and changes nothing, when the template and parameters match the stack.
    Raises ``StackUpdateError`` when CloudFormation fails and rolls back.
    """
    status = stack_status(cloudformation, stack_name)
    busy = status is not None and status.endswith("_IN_PROGRESS")
    if busy and status != "REVIEW_IN_PROGRESS":
        raise DeployError(
            f"Stack {stack_name!r} is {status}. Wait until the running "
            "operation ends, then deploy again."
        )
    if status in FAILED_CREATE_STATUSES:
        logger.info("Deleting stack %s, whose creation had failed", stack_name)
        cloudformation.delete_stack(StackName=stack_name)
        _wait_for_stack(cloudformation, stack_name, deleting=True)
        status = None
    creating = status is None or status == "REVIEW_IN_PROGRESS"
    change_set_id = _create_change_set(
        cloudformation,
        stack_name,
        template_body,
        _parameter_list(
            cloudformation, stack_name, parameters, keep_previous, creating
        ),
        change_set_type="CREATE" if creating else "UPDATE",
        role_arn=role_arn,
        change_set_name=change_set_name,
    )
    if change_set_id is None:
        return []
    changes = _describe_changes(cloudformation, change_set_id)
    report(stack_name, changes)
    cloudformation.execute_change_set(ChangeSetName=change_set_id)
    _wait_for_stack(cloudformation, stack_name)
    return changes


def _parameter_list(
    cloudformation: Any,
    stack_name: str,
    parameters: Mapping[str, str],
    keep_previous: tuple[str, ...],
    creating: bool,
) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = [
        {"ParameterKey": key, "ParameterValue": value}
        for key, value in parameters.items()
    ]
    if creating:
        return listed
    deployed = previous_parameters(cloudformation, stack_name)
    for key in keep_previous:
        if key not in parameters and key in deployed:
            listed.append({"ParameterKey": key, "UsePreviousValue": True})
    return listed


def _create_change_set(
    cloudformation: Any,
    stack_name: str,
    template_body: str,
    parameters: list[dict[str, Any]],
    *,
    change_set_type: str,
    role_arn: str | None,
    change_set_name: str,
) -> str | None:
    kwargs: dict[str, Any] = {
        "StackName": stack_name,
        "ChangeSetName": change_set_name,
        "ChangeSetType": change_set_type,
        "TemplateBody": template_body,
        "Parameters": parameters,
        "Capabilities": list(CAPABILITIES),
    }
    if role_arn:
        kwargs["RoleARN"] = role_arn
    try:
        change_set_id: str = cloudformation.create_change_set(**kwargs)["Id"]
    except ClientError as exc:
        if any(reason in str(exc) for reason in NO_CHANGES_REASONS):
            return None
        raise DeployError(
            f"CloudFormation rejected the change set for stack {stack_name!r}: "
            f"{exc.response['Error']['Message']}"
        ) from exc
    deadline = time.monotonic() + CHANGE_SET_TIMEOUT_SECONDS
    while True:
        described = cloudformation.describe_change_set(ChangeSetName=change_set_id)
        status = described["Status"]
        if status == "CREATE_COMPLETE":
            return change_set_id
        if status == "FAILED":
            reason = described.get("StatusReason", "")
            cloudformation.delete_change_set(ChangeSetName=change_set_id)
            if any(text in reason for text in NO_CHANGES_REASONS):
                logger.info("Stack %s is up to date", stack_name)
                return None
            raise DeployError(
                f"The change set for stack {stack_name!r} failed: {reason}"
            )
        if time.monotonic() > deadline:
            raise DeployError(
                f"The change set for stack {stack_name!r} is still {status} "
                f"after {CHANGE_SET_TIMEOUT_SECONDS} s."
            )
        time.sleep(POLL_INTERVAL_SECONDS)


def _describe_changes(cloudformation: Any, change_set_id: str) -> list[ResourceChange]:
    changes = []
    paginator = cloudformation.get_paginator("describe_change_set")
    for page in paginator.paginate(ChangeSetName=change_set_id):
        for change in page.get("Changes", []):
            resource = change.get("ResourceChange", {})
            changes.append(
                ResourceChange(
                    action=resource.get("Action", "?"),
                    logical_id=resource.get("LogicalResourceId", "?"),
                    resource_type=resource.get("ResourceType", "?"),
                    replacement=resource.get("Replacement", ""),
                )
            )
    return changes


def _wait_for_stack(
    cloudformation: Any, stack_name: str, *, deleting: bool = False
) -> str:
    deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
    while True:
        status = stack_status(cloudformation, stack_name)
        if status is None or status == "DELETE_COMPLETE":
            if deleting:
                return "DELETE_COMPLETE"
            raise DeployError(f"Stack {stack_name!r} disappeared during the update.")
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise DeployError(
                f"Stack {stack_name!r} is still {status} after "
                f"{STACK_TIMEOUT_SECONDS} s. Watch it in the CloudFormation "
                "console and deploy again once it has settled."
            )
        time.sleep(POLL_INTERVAL_SECONDS)
    if deleting and status != "DELETE_COMPLETE":
        raise DeployError(f"Stack {stack_name!r} could not be deleted: {status}.")
    if "ROLLBACK" in status or status.endswith("_FAILED"):
        raise StackUpdateError(
            f"Stack {stack_name!r} ended in {status}: "
            f"{_failure_reasons(cloudformation, stack_name)}. The stack was "
            "rolled back; fix the template or parameters and deploy again."
        )
    return status


def _failure_reasons(cloudformation: Any, stack_name: str) -> str:
    """Return the reasons of the resources that failed in the last operation."""
    events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
    reasons = []
    for event in events:
        status = event.get("ResourceStatus", "")
        logical_id = event.get("LogicalResourceId")
        # Events come newest first, and the operation began where the stack
        # itself went into progress.
        if logical_id == stack_name and status in (
            "UPDATE_IN_PROGRESS",
            "CREATE_IN_PROGRESS",
        ):
            break
        if status.endswith("_FAILED") and event.get("ResourceStatusReason"):
            reasons.append(f"{logical_id}: {event['ResourceStatusReason']}")
    return "; ".join(reversed(reasons)) or "no resource reported a reason"
