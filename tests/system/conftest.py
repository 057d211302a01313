"""Fixtures for the queue system's tests: a stack without the local services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from system import embedded, provision
from system.sale import SaleConfig
from system.stack import StackResources


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
