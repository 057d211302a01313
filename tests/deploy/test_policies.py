"""Least privilege in the templates, checked on the policy documents themselves.

MiniStack 1.5.33 enforces IAM only with AUTH=true and never evaluates
dynamodb:LeadingKeys, so these tests read the statements instead of
sending requests that the emulator would allow anyway.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from system import schema
from system.deploy.shared import SHARED_TEMPLATE_PATH
from system.stack import TEMPLATE_PATH

IDENTITY_ID = "${cognito-identity.amazonaws.com:sub}"
PSEUDO_PARAMETERS = {
    "${AWS::Partition}": "aws",
    "${AWS::Region}": "eu-west-1",
    "${AWS::AccountId}": "123456789012",
}
ENVIRONMENT = "dev"


def _load(path: Path) -> dict[str, Any]:
    template: dict[str, Any] = cfn_yaml.load(str(path))
    return template


@pytest.fixture(scope="module")
def stack_template() -> dict[str, Any]:
    return _load(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def shared_template() -> dict[str, Any]:
    return _load(SHARED_TEMPLATE_PATH)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    properties = template["Resources"][role]["Properties"]
    return [
        statement
        for policy in properties.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _allowed_actions(template: dict[str, Any], role: str) -> set[str]:
    return {
        action
        for statement in _statements(template, role)
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
    }


def _substitute(text: str) -> str:
    for name, value in {
        **PSEUDO_PARAMETERS,
        "${EnvironmentName}": ENVIRONMENT,
    }.items():
        text = text.replace(name, value)
    return text


def _shared_name(template: dict[str, Any], resource: str, name_property: str) -> str:
    """Return the fixed name a stack resource gets in shared-function mode."""
    value = template["Resources"][resource]["Properties"][name_property]
    condition, when_shared, _ = value["Fn::If"]
    assert condition == "UsesSharedFunction"
    return _substitute(when_shared["Fn::Sub"])


def _resource_patterns(statement: dict[str, Any]) -> list[str]:
    return [
        _substitute(resource["Fn::Sub"]) for resource in _as_list(statement["Resource"])
    ]


def test_fan_role_trusts_pool_guests_only(stack_template: dict[str, Any]) -> None:
    trust = stack_template["Resources"]["FanRole"]["Properties"][
        "AssumeRolePolicyDocument"
    ]["Statement"]

    assert len(trust) == 1
    assert trust[0]["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
    assert trust[0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    condition = trust[0]["Condition"]
    assert condition["StringEquals"] == {
        "cognito-identity.amazonaws.com:aud": {"Ref": "IdentityPool"}
    }
    assert condition["ForAnyValue:StringLike"] == {
        "cognito-identity.amazonaws.com:amr": "unauthenticated"
    }


def test_fan_role_puts_own_item_browser_attributes(
    stack_template: dict[str, Any],
) -> None:
    puts = [
        statement
        for statement in _statements(stack_template, "FanRole")
        if "dynamodb:PutItem" in _as_list(statement["Action"])
    ]

    assert len(puts) == 1
    put = puts[0]
    assert _as_list(put["Action"]) == ["dynamodb:PutItem"]
    assert put["Resource"] == {"Fn::GetAtt": ["QueueTable", "Arn"]}
    condition = put["Condition"]
    assert list(condition) == ["ForAllValues:StringEquals"]
    keys = condition["ForAllValues:StringEquals"]
    assert keys["dynamodb:LeadingKeys"] == [IDENTITY_ID]
    assert sorted(keys["dynamodb:Attributes"]) == sorted(schema.BROWSER_ATTRIBUTES)


def test_fan_role_gets_own_item_and_counters(stack_template: dict[str, Any]) -> None:
    gets = [
        statement
        for statement in _statements(stack_template, "FanRole")
        if "dynamodb:GetItem" in _as_list(statement["Action"])
    ]
    by_table = {statement["Resource"]["Fn::GetAtt"][0]: statement for statement in gets}

    assert sorted(by_table) == ["QueueTable", "SalesTable"]
    own_item = by_table["QueueTable"]
    assert own_item["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [IDENTITY_ID]}
    }
    assert _as_list(by_table["SalesTable"]["Action"]) == ["dynamodb:GetItem"]


def test_fan_role_grants_nothing_else(stack_template: dict[str, Any]) -> None:
    properties = stack_template["Resources"]["FanRole"]["Properties"]
    statements = _statements(stack_template, "FanRole")

    assert "ManagedPolicyArns" not in properties
    assert all(statement["Effect"] == "Allow" for statement in statements)
    assert _allowed_actions(stack_template, "FanRole") == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    }
    assert len(statements) == 3


def test_deploy_role_has_no_wildcards(shared_template: dict[str, Any]) -> None:
    for statement in _statements(shared_template, "DeployRole"):
        if statement["Effect"] != "Allow":
            continue
        for action in _as_list(statement["Action"]):
            assert "*" not in action, action
        for resource in _as_list(statement["Resource"]):
            assert resource != "*", statement


def test_deploy_role_uses_cloudformation_for_resources(
    shared_template: dict[str, Any],
) -> None:
    actions = _allowed_actions(shared_template, "DeployRole")
    by_service: dict[str, set[str]] = {}
    for action in actions:
        service, name = action.split(":")
        by_service.setdefault(service, set()).add(name)

    assert set(by_service) == {"cloudformation", "iam", "s3", "lambda", "dynamodb"}
    assert by_service["iam"] == {"PassRole"}
    assert by_service["s3"] == {"GetObject", "PutObject"}
    assert by_service["dynamodb"] <= {"GetItem", "PutItem", "Query", "BatchWriteItem"}
    assert "CreateFunction" not in by_service["lambda"]
    assert "UpdateFunctionConfiguration" not in by_service["lambda"]
    assert "UpdateStack" not in by_service["cloudformation"]


def test_deploy_role_passes_only_cloudformation_role(
    shared_template: dict[str, Any],
) -> None:
    passes = [
        statement
        for statement in _statements(shared_template, "DeployRole")
        if "iam:PassRole" in _as_list(statement["Action"])
    ]

    assert len(passes) == 1
    assert passes[0]["Resource"] == {"Fn::GetAtt": ["CloudFormationRole", "Arn"]}
    assert passes[0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
    }


def test_deploy_role_cannot_change_shared_stack(
    shared_template: dict[str, Any],
) -> None:
    denies = [
        statement
        for statement in _statements(shared_template, "DeployRole")
        if statement["Effect"] == "Deny"
    ]

    assert len(denies) == 1
    assert denies[0]["Resource"] == {"Ref": "AWS::StackId"}
    assert set(_as_list(denies[0]["Action"])) >= {
        "cloudformation:CreateChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DeleteStack",
        "cloudformation:UpdateStack",
    }


def test_deploy_role_lambda_rights_on_shared_function(
    shared_template: dict[str, Any],
) -> None:
    lambda_statements = [
        statement
        for statement in _statements(shared_template, "DeployRole")
        if any(action.startswith("lambda:") for action in _as_list(statement["Action"]))
    ]

    assert len(lambda_statements) == 1
    assert lambda_statements[0]["Resource"] == [
        {"Fn::GetAtt": ["ForwarderFunction", "Arn"]},
        {"Fn::Sub": "${ForwarderFunction.Arn}:*"},
    ]


def test_cloudformation_role_scoped_to_project(
    shared_template: dict[str, Any],
) -> None:
    # Actions that AWS authorizes only on "*"; the mapping ones are narrowed
    # by a condition on the function instead.
    unscoped = {
        "cognito-identity:CreateIdentityPool",
        "lambda:GetEventSourceMapping",
        "lambda:ListEventSourceMappings",
    }
    for statement in _statements(shared_template, "CloudFormationRole"):
        actions = set(_as_list(statement["Action"]))
        resources = _as_list(statement["Resource"])
        if resources == ["*"]:
            condition = statement.get("Condition", {})
            assert actions <= unscoped or "lambda:FunctionArn" in str(condition), (
                actions
            )
            continue
        for resource in resources:
            text = resource["Fn::Sub"] if isinstance(resource, dict) else resource
            assert "boxoffice-" in text or ":identitypool/" in text, text


def test_shared_forwarder_role_matches_stack_role(
    stack_template: dict[str, Any], shared_template: dict[str, Any]
) -> None:
    stack_actions = [
        sorted(_as_list(statement["Action"]))
        for statement in _statements(stack_template, "ForwarderRole")
    ]
    shared_actions = [
        sorted(_as_list(statement["Action"]))
        for statement in _statements(shared_template, "ForwarderRole")
    ]

    assert shared_actions == stack_actions


def test_shared_roles_cover_environment_names(
    stack_template: dict[str, Any], shared_template: dict[str, Any]
) -> None:
    queue_table = _shared_name(stack_template, "QueueTable", "TableName")
    sales_table = _shared_name(stack_template, "SalesTable", "TableName")
    config_table = _shared_name(stack_template, "ConfigTable", "TableName")
    work_queue = _shared_name(stack_template, "WorkQueue", "QueueName")
    dead_letters = _shared_name(stack_template, "DeadLetterQueue", "QueueName")
    table_arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/"
    queue_arn = "arn:aws:sqs:eu-west-1:123456789012:"
    stream, items, config, queues = (
        _resource_patterns(statement)
        for statement in _statements(shared_template, "ForwarderRole")
    )
    deploy_config = [
        pattern
        for statement in _statements(shared_template, "DeployRole")
        if "dynamodb:BatchWriteItem" in _as_list(statement["Action"])
        for pattern in _resource_patterns(statement)
    ]

    def covered(arn: str, patterns: list[str]) -> bool:
        return any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns)

    assert covered(f"{table_arn}{queue_table}/stream/2026-12-04T16:26:57.053", stream)
    assert covered(f"{table_arn}{queue_table}", items)
    assert covered(f"{table_arn}{sales_table}", items)
    assert covered(f"{table_arn}{config_table}", config)
    assert covered(f"{queue_arn}{work_queue}", queues)
    assert covered(f"{queue_arn}{dead_letters}", queues)
    assert covered(f"{table_arn}{config_table}", deploy_config)
    assert not covered(f"{table_arn}boxoffice-local-QueueTable-1A2B3C", items)


def test_shared_function_patterns_match_names(
    stack_template: dict[str, Any], shared_template: dict[str, Any]
) -> None:
    variables = shared_template["Resources"]["ForwarderFunction"]["Properties"][
        "Environment"
    ]["Variables"]

    config_pattern = variables["BOXOFFICE_CONFIG_TABLE_PATTERN"]
    queue_pattern = variables["BOXOFFICE_QUEUE_TABLE_PATTERN"]
    assert config_pattern.replace("{environment}", ENVIRONMENT) == _shared_name(
        stack_template, "ConfigTable", "TableName"
    )
    assert queue_pattern.replace("{environment}", ENVIRONMENT) == _shared_name(
        stack_template, "QueueTable", "TableName"
    )
    assert "BOXOFFICE_CONFIG_TABLE" not in variables
