"""Fixtures for one-stage tests of the window processor.

These tests need a processor they can kill and restart, and no forwarder
numbering the fans they pump in. So they use a stack of their own: the
embedded stack without its services, with the forwarder's stream mapping
disabled, and a processor per test that they start and stop by PID.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from system import embedded, provision
from system.clients import make_client, make_session
from system.sale import SaleConfig
from system.stack import StackResources
from tests.system.pump import ProcessorProcess, Pump

# Short timings keep the tests quick: held messages return to the queue 4 s
# after a crash, and the processor notices new sales within half a second.
TEST_PROCESSOR_OPTIONS = (
    "--poll-interval-seconds",
    "0.1",
    "--rescan-interval-seconds",
    "0.5",
    "--visibility-timeout-seconds",
    "4",
)


@pytest.fixture(scope="session")
def pump_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[embedded.EmbeddedState]:
    """Start an embedded stack without services and with the forwarder off."""
    home = tmp_path_factory.mktemp("pump-home")
    state = embedded.up(home=home, services=False)
    try:
        _disable_forwarder(state)
        yield state
    finally:
        embedded.stop(state)


@pytest.fixture(scope="session")
def pump_resources(pump_stack: embedded.EmbeddedState) -> StackResources:
    return embedded.resources(pump_stack)


@pytest.fixture(scope="session")
def pump_dynamodb(pump_stack: embedded.EmbeddedState) -> Any:
    """A boto3 DynamoDB resource aimed at the pump stack."""
    return make_session(pump_stack.settings).resource(
        "dynamodb", endpoint_url=pump_stack.endpoint_url
    )


@pytest.fixture(scope="session")
def pump(pump_stack: embedded.EmbeddedState, pump_resources: StackResources) -> Pump:
    return Pump(pump_stack, pump_resources)


@pytest.fixture
def pump_sale(
    pump_stack: embedded.EmbeddedState, pump_resources: StackResources
) -> Iterator[Callable[..., SaleConfig]]:
    """Return a factory that configures a fresh sale on the pump stack.

    After the test, each of its sales is sold out, so the next test's
    processor frees their windows and drains their messages. Otherwise every
    processor start would receive the leftover messages once more, and after
    the queue's maxReceiveCount they would move to the dead-letter queue.
    """
    sale_ids: list[str] = []

    def factory(**fields: Any) -> SaleConfig:
        fields.setdefault("sale_id", f"test-{uuid.uuid4().hex[:10]}")
        config = SaleConfig(**fields)
        provision.configure_sale(pump_stack.settings, pump_resources, config)
        sale_ids.append(config.sale_id)
        return config

    yield factory
    dynamodb = make_client(pump_stack.settings, "dynamodb")
    for sale_id in sale_ids:
        dynamodb.update_item(
            TableName=pump_resources.sales_table,
            Key={"sale_id": {"S": sale_id}},
            UpdateExpression="SET tickets_left = :zero",
            ExpressionAttributeValues={":zero": {"N": "0"}},
        )


@pytest.fixture
def window_processor(
    pump_stack: embedded.EmbeddedState, tmp_path: Path
) -> Iterator[ProcessorProcess]:
    """Run a window processor for one test; stop it with SIGTERM afterwards."""
    process = ProcessorProcess(
        pump_stack, tmp_path / "processor.log", *TEST_PROCESSOR_OPTIONS
    )
    process.start()
    try:
        yield process
    finally:
        process.terminate()


def _disable_forwarder(state: embedded.EmbeddedState) -> None:
    resources = embedded.resources(state)
    lambda_client = make_client(state.settings, "lambda")
    mappings = lambda_client.list_event_source_mappings(
        FunctionName=resources.forwarder_function
    )["EventSourceMappings"]
    assert mappings, "the forwarder has no stream mapping to disable"
    for mapping in mappings:
        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
