"""Helpers shared by the tests: join fans the browser's way and wait for state."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from system import schema
from system.clients import make_client
from system.settings import Settings
from system.stack import StackResources

T = TypeVar("T")


def join_fan(
    settings: Settings,
    resources: StackResources,
    sale_id: str,
    *,
    synthetic: bool = False,
    cognito: Any = None,
    dynamodb: Any = None,
) -> str:
    """Get a Cognito identity and write the fan's join item; return the fan id."""
    cognito = cognito or make_client(settings, "cognito-identity")
    dynamodb = dynamodb or make_client(settings, "dynamodb")
    fan_id: str = cognito.get_id(IdentityPoolId=resources.identity_pool_id)[
        "IdentityId"
    ]
    dynamodb.put_item(
        TableName=resources.queue_table,
        Item={
            schema.FAN_ID: {"S": fan_id},
            schema.SALE_ID: {"S": sale_id},
            schema.CLIENT_TIME: {"N": str(int(time.time() * 1000))},
            schema.SYNTHETIC: {"BOOL": synthetic},
        },
        ConditionExpression="attribute_not_exists(fan_id)",
    )
    return fan_id


def get_fan(dynamodb: Any, resources: StackResources, fan_id: str) -> dict[str, Any]:
    """Return the fan's item, strongly consistent (boto3 resource)."""
    table = dynamodb.Table(resources.queue_table)
    item: dict[str, Any] = table.get_item(
        Key={schema.FAN_ID: fan_id}, ConsistentRead=True
    ).get("Item", {})
    return item


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Call ``check`` until it returns a truthy value, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"Timed out after {timeout} s waiting for {message}; last {last!r}"
    )
