"""The canary's own sale, created on the stack the first time a probe needs it."""

from __future__ import annotations

import logging
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from synthetic.config import CANARY_SALE_ID
from system import schema
from system.errors import SaleNotFoundError
from system.sale import SaleConfig
from system.stack import StackResources

logger = logging.getLogger(__name__)

# Synthetic purchases are dry runs, so one ticket is never used up; a few
# windows let probes that run at once pass without queueing for one.
CANARY_SALE = SaleConfig(
    sale_id=CANARY_SALE_ID,
    stock=1,
    window_count=4,
    session_seconds=60,
    claim_timeout_seconds=30,
)

_serializer = TypeSerializer()


def ensure_sale(dynamodb: Any, resources: StackResources, sale_id: str) -> None:
    """Check that the sale exists; create it when it is the canary's own sale.

    Raises ``SaleNotFoundError`` for any other missing sale: the probe never
    configures a real sale.
    """
    key = {schema.SALE_ID: {"S": sale_id}}
    response = dynamodb.get_item(
        TableName=resources.sales_table, Key=key, ConsistentRead=True
    )
    if "Item" in response:
        return
    if sale_id != CANARY_SALE_ID:
        raise SaleNotFoundError(
            f"Sale {sale_id!r} is not configured on stack {resources.stack_name!r}. "
            f"Pass an existing --sale-id, or omit it to use the canary's own sale "
            f"{CANARY_SALE_ID!r}."
        )
    item = {
        name: _serializer.serialize(value)
        for name, value in CANARY_SALE.to_item().items()
    }
    try:
        dynamodb.put_item(
            TableName=resources.sales_table,
            Item=item,
            ConditionExpression=f"attribute_not_exists({schema.SALE_ID})",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return  # another probe created it a moment ago
    logger.info("Created the canary sale %s on stack %s", sale_id, resources.stack_name)
