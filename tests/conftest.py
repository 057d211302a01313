"""Fixtures: one real embedded stack (MiniStack on 127.0.0.1) per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from system import embedded, provision
from system.clients import make_client, make_session
from system.sale import SaleConfig
from system.stack import StackResources


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[embedded.EmbeddedState]:
    """Start the embedded stack with its services once for the whole session."""
    home = tmp_path_factory.mktemp("boxoffice-home")
    state = embedded.up(home=home)
    try:
        yield state
    finally:
        embedded.stop(state)


@pytest.fixture(scope="session")
def resources(stack: embedded.EmbeddedState) -> StackResources:
    return embedded.resources(stack)


@pytest.fixture(scope="session")
def dynamodb(stack: embedded.EmbeddedState) -> Any:
    """A boto3 DynamoDB resource aimed at the embedded stack."""
    return make_session(stack.settings).resource(
        "dynamodb", endpoint_url=stack.endpoint_url
    )


@pytest.fixture(scope="session")
def sqs(stack: embedded.EmbeddedState) -> Any:
    return make_client(stack.settings, "sqs")


@pytest.fixture
def make_sale(stack: embedded.EmbeddedState, resources: StackResources) -> Any:
    """Return a factory that configures a fresh sale with a unique id."""

    def factory(**fields: Any) -> SaleConfig:
        fields.setdefault("sale_id", f"test-{uuid.uuid4().hex[:10]}")
        config = SaleConfig(**fields)
        provision.configure_sale(stack.settings, resources, config)
        return config

    return factory


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may reach real AWS or a metadata address by default.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    if "AWS_ACCESS_KEY_ID" not in os.environ:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


__all__ = ["boto3"]
