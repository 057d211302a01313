"""Fixtures for the queue system's tests.

Two stacks run without the local services. ``bare_stack`` serves the
forwarder's tests, which read the work queue themselves, so a window
processor would consume the messages they look for. ``ticketing_stack``
runs the ticketing service alone, because the window processor serves every
sale in the sales table and would free or reassign the windows these tests
set up by hand: the tests admit fans themselves with a busy window item, an
admitted fan item and a token signed with the stack's secret. ``pump_stack``
serves the window processor's one-stage tests: its forwarder mapping is
disabled, so fans pumped in already numbered are not numbered again, and
each test starts and kills its own processor by PID.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from system import embedded, provision, schema, tokens
from system.clients import make_client, make_session
from system.sale import SaleConfig
from system.stack import StackResources
from tests.system.pump import ProcessorProcess, Pump
from tests.system.ticketing_stack import (
    Admission,
    TicketingStack,
    start_ticketing,
    stop_process,
)

SESSION_SECONDS = 120


@pytest.fixture(scope="session")
def ticketing_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TicketingStack]:
    """Start MiniStack with the stack deployed, and the ticketing service."""
    home = tmp_path_factory.mktemp("ticketing-home")
    state = embedded.up(home=home, services=False)
    process = None
    try:
        # The tests write admitted fans straight into the queue table; a
        # forwarder would number them again and reset them to waiting.
        _disable_forwarder(state)
        log_path = home / "ticketing.log"
        process = start_ticketing(
            state, state.ticketing_port, state.ticketing_metrics_port, log_path
        )
        dynamodb = make_session(state.settings).resource(
            "dynamodb", endpoint_url=state.endpoint_url
        )
        yield TicketingStack(
            state=state,
            resources=embedded.resources(state),
            dynamodb=dynamodb,
            secret=state.secret_path.read_text().strip().encode(),
            process=process,
            log_path=log_path,
        )
    finally:
        if process is not None:
            stop_process(process)
        embedded.stop(state)


@pytest.fixture
def new_sale(ticketing_stack: TicketingStack) -> Any:
    """Return a factory that configures a fresh sale with a unique id."""

    def factory(**fields: Any) -> SaleConfig:
        fields.setdefault("sale_id", f"test-{uuid.uuid4().hex[:10]}")
        fields.setdefault("session_seconds", SESSION_SECONDS)
        config = SaleConfig(**fields)
        provision.configure_sale(
            ticketing_stack.state.settings, ticketing_stack.resources, config
        )
        return config

    return factory


@pytest.fixture
def admit(ticketing_stack: TicketingStack) -> Any:
    """Return a factory that admits a fan to a window, as the windows would."""
    counter = iter(range(1, 1_000_000))

    def factory(
        sale: SaleConfig,
        *,
        window_id: str | None = None,
        synthetic: bool = False,
        expires_in: float = SESSION_SECONDS,
    ) -> Admission:
        number = next(counter)
        fan_id = f"us-east-1:{uuid.uuid4()}"
        window_id = window_id or f"w-{number:03d}"
        now = time.time()
        expires_at = now + expires_in
        token, claims = tokens.issue(
            ticketing_stack.secret,
            fan_id=fan_id,
            sale_id=sale.sale_id,
            window_id=window_id,
            expires_at=expires_at,
            synthetic=synthetic,
        )
        times = {
            schema.ADMITTED_AT: int(now),
            schema.CLAIM_BY: int(now + sale.claim_timeout_seconds),
            schema.EXPIRES_AT: int(expires_at),
        }
        ticketing_stack.table("windows_table").put_item(
            Item={
                schema.SALE_ID: sale.sale_id,
                schema.WINDOW_ID: window_id,
                schema.WINDOW_STATUS: schema.WINDOW_BUSY,
                schema.TOKEN_ID: claims.token_id,
                schema.FAN_ID: fan_id,
                schema.QUEUE_NUMBER: number,
                schema.SYNTHETIC: synthetic,
                schema.CLAIMED: False,
                **times,
            }
        )
        ticketing_stack.table("queue_table").put_item(
            Item={
                schema.FAN_ID: fan_id,
                schema.SALE_ID: sale.sale_id,
                schema.CLIENT_TIME: int(now * 1000),
                schema.SYNTHETIC: synthetic,
                schema.QUEUE_NUMBER: number,
                schema.STATUS: schema.ADMITTED,
                schema.WINDOW_ID: window_id,
                schema.PURCHASE_URL: tokens.purchase_url(ticketing_stack.url, token),
                **times,
            }
        )
        return Admission(sale.sale_id, fan_id, window_id, token, claims)

    return factory


@pytest.fixture(scope="session")
def bare_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[embedded.EmbeddedState]:
    """Start MiniStack with the deployed stack, but no window processor or
    ticketing service.

    Tests that read the work queue themselves use it, because a window
    processor would consume the messages they look for.
    """
    home = tmp_path_factory.mktemp("boxoffice-bare-home")
    state = embedded.up(home=home, services=False)
    try:
        yield state
    finally:
        embedded.stop(state)


@pytest.fixture(scope="session")
def bare_resources(bare_stack: embedded.EmbeddedState) -> StackResources:
    return embedded.resources(bare_stack)


@pytest.fixture
def make_bare_sale(
    bare_stack: embedded.EmbeddedState, bare_resources: StackResources
) -> Callable[..., SaleConfig]:
    """Return a factory that configures a fresh sale with a unique id."""

    def factory(**fields: Any) -> SaleConfig:
        fields.setdefault("sale_id", f"test-{uuid.uuid4().hex[:10]}")
        config = SaleConfig(**fields)
        provision.configure_sale(bare_stack.settings, bare_resources, config)
        return config

    return factory


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
