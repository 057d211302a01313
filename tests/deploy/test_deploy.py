"""Deploy, switch and roll back environments on the embedded stack."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from system import cli, provision, schema
from system.clients import make_client, make_session
from system.deploy import records
from system.deploy.environment import (
    deploy,
    environment_settings,
    environment_stack_name,
    roll_back,
)
from system.deploy.errors import (
    BuildConflictError,
    BuildNotFoundError,
    DeployError,
    InvalidDeployRequestError,
    NothingToRollBackError,
    StackUpdateError,
)
from system.deploy.shared import SharedResources, describe_shared
from system.embedded import EmbeddedState
from system.sale import SaleConfig
from system.settings import Settings
from system.stack import TEMPLATE_PATH, StackResources, describe_stack
from tests.helpers import join_fan, wait_for

NewBuild = Callable[[], tuple[int, str]]
Environment = Callable[[str], str]
FORWARD_TIMEOUT_SECONDS = 60


def _shared(settings: Settings) -> SharedResources:
    shared = describe_shared(settings)
    assert shared is not None, "the first deploy creates the shared stack"
    return shared


def _alias(settings: Settings, environment: str) -> dict[str, Any]:
    lambda_client = make_client(settings, "lambda")
    alias: dict[str, Any] = lambda_client.get_alias(
        FunctionName=_shared(settings).function_name, Name=environment
    )
    return alias


def _versions(settings: Settings) -> list[str]:
    lambda_client = make_client(settings, "lambda")
    response = lambda_client.list_versions_by_function(
        FunctionName=_shared(settings).function_name
    )
    return [version["Version"] for version in response["Versions"]]


def _resources(settings: Settings, environment: str) -> StackResources:
    return describe_stack(environment_settings(settings, environment))


def _config(settings: Settings, environment: str) -> dict[str, str]:
    table = (
        make_session(settings)
        .resource("dynamodb", endpoint_url=settings.endpoint_url)
        .Table(_resources(settings, environment).config_table)
    )
    items = table.scan(ConsistentRead=True)["Items"]
    return {item[schema.CONFIG_NAME]: item[schema.CONFIG_VALUE] for item in items}


def _releases(settings: Settings, environment: str) -> list[records.Release]:
    table = (
        make_session(settings)
        .resource("dynamodb", endpoint_url=settings.endpoint_url)
        .Table(_shared(settings).releases_table)
    )
    return records.releases(table, environment)


def _stack(settings: Settings, environment: str) -> dict[str, Any]:
    cloudformation = make_client(settings, "cloudformation")
    stack: dict[str, Any] = cloudformation.describe_stacks(
        StackName=environment_stack_name(environment)
    )["Stacks"][0]
    return stack


def _queued_fan_ids(settings: Settings, queue_url: str) -> set[str]:
    """Receive the queue's messages, delete them, and return the fans' ids."""
    sqs = make_client(settings, "sqs")
    fan_ids: set[str] = set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            return fan_ids
        for message in messages:
            fan_ids.add(json.loads(message["Body"])[schema.FAN_ID])
            sqs.delete_message(
                QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def _join(settings: Settings, environment: str) -> str:
    """Open a sale on the environment, join one fan the browser's way, return it."""
    target = environment_settings(settings, environment)
    resources = describe_stack(target)
    sale = SaleConfig(sale_id=f"deploy-{uuid.uuid4().hex[:8]}")
    provision.configure_sale(target, resources, sale)
    return join_fan(target, resources, sale.sale_id)


def _wait_until_forwarded(settings: Settings, environment: str, fan_id: str) -> None:
    queue_url = _resources(settings, environment).work_queue_url
    seen: set[str] = set()

    def forwarded() -> bool:
        seen.update(_queued_fan_ids(settings, queue_url))
        return fan_id in seen

    wait_for(
        forwarded,
        timeout=FORWARD_TIMEOUT_SECONDS,
        message=f"fan {fan_id} in the work queue of {environment}",
    )


def test_environments_share_function(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev, staging = environment("dev"), environment("staging")
    build, commit = new_build()

    first = deploy(settings, dev, build, commit)
    versions_after_dev = _versions(settings)
    second = deploy(settings, staging, build)

    assert first.published
    assert not second.published
    assert second.build.version == first.build.version
    assert _versions(settings) == versions_after_dev
    dev_alias, staging_alias = _alias(settings, dev), _alias(settings, staging)
    assert dev_alias["FunctionVersion"] == first.build.version
    assert staging_alias["FunctionVersion"] == first.build.version
    function_arn = _shared(settings).function_arn
    assert dev_alias["AliasArn"] == f"{function_arn}:{dev}"
    assert staging_alias["AliasArn"] == f"{function_arn}:{staging}"

    dev_config, staging_config = _config(settings, dev), _config(settings, staging)
    assert dev_config["environment"] == dev
    assert staging_config["environment"] == staging
    assert dev_config["work_queue_url"] == _resources(settings, dev).work_queue_url
    assert (
        staging_config["work_queue_url"] == _resources(settings, staging).work_queue_url
    )
    assert dev_config["work_queue_url"] != staging_config["work_queue_url"]

    lambda_client = make_client(settings, "lambda")
    for name in (dev, staging):
        mappings = lambda_client.list_event_source_mappings(
            EventSourceArn=_resources(settings, name).queue_table_stream_arn
        )["EventSourceMappings"]
        assert [m["FunctionArn"] for m in mappings] == [f"{function_arn}:{name}"]


def test_build_recorded_in_deployments_table(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    build, commit = new_build()
    result = deploy(settings, environment("dev"), build, commit)

    table = (
        make_session(settings)
        .resource("dynamodb", endpoint_url=settings.endpoint_url)
        .Table(_shared(settings).deployments_table)
    )
    stored = records.get_build(table, build)
    assert stored is not None
    assert stored.commit == commit
    assert stored.version == result.build.version
    version = make_client(settings, "lambda").get_function_configuration(
        FunctionName=_shared(settings).function_name, Qualifier=stored.version
    )
    assert version["CodeSha256"] == stored.code_sha256


def test_redeploy_changes_nothing(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev = environment("dev")
    build, commit = new_build()
    deploy(settings, dev, build, commit)
    alias = _alias(settings, dev)
    versions = _versions(settings)
    releases = _releases(settings, dev)
    stack = _stack(settings, dev)

    again = deploy(settings, dev, build, commit)

    assert not again.changed
    assert not again.published
    assert again.changes == []
    assert _alias(settings, dev)["RevisionId"] == alias["RevisionId"]
    assert _versions(settings) == versions
    assert _releases(settings, dev) == releases
    assert _stack(settings, dev).get("LastUpdatedTime") == stack.get("LastUpdatedTime")


def test_rollback_restores_previous_version(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev = environment("dev")
    first_build, first_commit = new_build()
    second_build, second_commit = new_build()
    first = deploy(settings, dev, first_build, first_commit)
    second = deploy(settings, dev, second_build, second_commit)
    assert second.build.version != first.build.version
    assert second.previous_version == first.build.version

    result = roll_back(settings, dev)

    assert result.left.build == second_build
    assert result.restored.build == first_build
    assert result.restored.version == first.build.version
    assert result.alias_was == second.build.version
    assert _alias(settings, dev)["FunctionVersion"] == first.build.version
    live = records.live_releases(_releases(settings, dev))
    assert [release.build for release in live] == [first_build]
    with pytest.raises(NothingToRollBackError):
        roll_back(settings, dev)
    assert _alias(settings, dev)["FunctionVersion"] == first.build.version


def test_deploy_after_rollback_moves_forward(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev = environment("dev")
    first_build, first_commit = new_build()
    second_build, second_commit = new_build()
    deploy(settings, dev, first_build, first_commit)
    second = deploy(settings, dev, second_build, second_commit)
    roll_back(settings, dev)

    again = deploy(settings, dev, second_build)

    assert again.changed
    assert not again.published
    assert _alias(settings, dev)["FunctionVersion"] == second.build.version
    live = records.live_releases(_releases(settings, dev))
    assert [release.build for release in live] == [first_build, second_build]


def test_failed_stack_update_leaves_environment(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev = environment("dev")
    good_build, good_commit = new_build()
    bad_build, bad_commit = new_build()
    good = deploy(settings, dev, good_build, good_commit)
    config = _config(settings, dev)
    # SQS rejects a visibility timeout over 12 hours once CloudFormation
    # applies it, so the update starts, fails on the queue and rolls back.
    broken = TEMPLATE_PATH.read_text().replace(
        "VisibilityTimeout: 30", "VisibilityTimeout: 99999"
    )
    assert broken != TEMPLATE_PATH.read_text()

    with pytest.raises(StackUpdateError, match="WorkQueue"):
        deploy(settings, dev, bad_build, bad_commit, template_body=broken)

    assert _stack(settings, dev)["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert _alias(settings, dev)["FunctionVersion"] == good.build.version
    assert _config(settings, dev) == config
    live = records.live_releases(_releases(settings, dev))
    assert [release.build for release in live] == [good_build]
    sqs = make_client(settings, "sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=_resources(settings, dev).work_queue_url,
        AttributeNames=["VisibilityTimeout"],
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == "30"
    fan_id = _join(settings, dev)
    _wait_until_forwarded(settings, dev, fan_id)


def test_rejected_parameter_changes_nothing(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev = environment("dev")
    build, commit = new_build()
    deploy(settings, dev, build, commit)
    stack = _stack(settings, dev)

    with pytest.raises(DeployError, match="StreamBatchSize"):
        deploy(settings, dev, build, parameters={"StreamBatchSize": "5000"})

    assert _stack(settings, dev).get("LastUpdatedTime") == stack.get("LastUpdatedTime")
    assert _stack(settings, dev)["StackStatus"] == stack["StackStatus"]


def test_parameter_kept_in_later_deploys(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev = environment("dev")
    first_build, first_commit = new_build()
    second_build, second_commit = new_build()
    deploy(settings, dev, first_build, first_commit)

    tuned = deploy(settings, dev, first_build, parameters={"StreamBatchSize": "25"})
    deploy(settings, dev, second_build, second_commit)

    assert [change.logical_id for change in tuned.changes] == [
        "ForwarderEventSourceMapping"
    ]
    parameters = {
        parameter["ParameterKey"]: parameter["ParameterValue"]
        for parameter in _stack(settings, dev)["Parameters"]
    }
    assert parameters["StreamBatchSize"] == "25"


def test_each_environment_forwards_to_own_queue(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    dev, staging = environment("dev"), environment("staging")
    build, commit = new_build()
    deploy(settings, dev, build, commit)
    deploy(settings, staging, build)
    dev_queue = _resources(settings, dev).work_queue_url
    staging_queue = _resources(settings, staging).work_queue_url

    dev_fan = _join(settings, dev)
    _wait_until_forwarded(settings, dev, dev_fan)
    staging_fan = _join(settings, staging)
    _wait_until_forwarded(settings, staging, staging_fan)

    assert dev_fan not in _queued_fan_ids(settings, staging_queue)
    assert staging_fan not in _queued_fan_ids(settings, dev_queue)


def test_build_number_names_one_commit(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    build, commit = new_build()
    _, other_commit = new_build()
    deploy(settings, environment("dev"), build, commit)

    with pytest.raises(BuildConflictError, match=commit):
        deploy(settings, environment("staging"), build, other_commit)


def test_unknown_build_needs_commit(
    settings: Settings, new_build: NewBuild, environment: Environment
) -> None:
    build, _ = new_build()

    with pytest.raises(BuildNotFoundError, match=f"Build {build}"):
        deploy(settings, environment("dev"), build)


@pytest.mark.parametrize(
    ("environment", "build", "commit"),
    [
        ("local", 1, "abcdef1"),
        ("shared", 1, "abcdef1"),
        ("Dev", 1, "abcdef1"),
        ("dev_1", 1, "abcdef1"),
        ("dev", 0, "abcdef1"),
        ("dev", 1, "ABCDEF1"),
        ("dev", 1, "main"),
    ],
)
def test_invalid_request_rejected(environment: str, build: int, commit: str) -> None:
    # Validation runs before any request, so this endpoint is never reached.
    settings = Settings(endpoint_url="http://127.0.0.1:9")

    with pytest.raises(InvalidDeployRequestError):
        deploy(settings, environment, build, commit)


def test_cli_reports_deploy_and_rollback(
    stack: EmbeddedState,
    settings: Settings,
    new_build: NewBuild,
    environment: Environment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dev = environment("dev")
    first_build, first_commit = new_build()
    second_build, second_commit = new_build()
    target = ["--endpoint-url", str(settings.endpoint_url)]
    deploy_first = ["deploy", "--env", dev, "--build", str(first_build)]

    assert cli.main([*deploy_first, "--commit", first_commit, *target]) == 0
    created = capsys.readouterr().out
    assert cli.main([*deploy_first, *target]) == 0
    repeated = capsys.readouterr().out
    second = ["deploy", "--env", dev, "--build", str(second_build)]
    assert cli.main([*second, "--commit", second_commit, *target]) == 0
    capsys.readouterr()
    # Without a target option the command finds the embedded stack's state.
    embedded = ["--home", stack.home]
    assert cli.main(["deploy", "--env", dev, "--rollback", *embedded]) == 0
    rolled_back = capsys.readouterr().out
    assert cli.main(["deploy", "--env", dev, "--rollback", *embedded]) == 2
    refused = capsys.readouterr().err

    version = _alias(settings, dev)["FunctionVersion"]
    assert f"Changes to stack {environment_stack_name(dev)}:" in created
    assert "QueueTable" in created
    assert f"Deployed build {first_build} " in created
    assert "nothing changed" in repeated
    assert f"alias {dev} -> version {version}, build {first_build}" in rolled_back
    assert "no earlier one to roll back to" in refused
