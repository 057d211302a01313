"""Fixtures for deploy tests: unique builds and environments on the embedded stack."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from system.embedded import EmbeddedState
from system.settings import Settings

_build_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def lambda_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Install the Lambda dependencies once per session, outside the user's cache."""
    folder = tmp_path_factory.mktemp("boxoffice-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOXOFFICE_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def settings(stack: EmbeddedState, lambda_cache: Path) -> Settings:
    """Settings for the embedded MiniStack that the environments deploy to."""
    return stack.settings


@pytest.fixture
def new_build() -> Callable[[], tuple[int, str]]:
    """Return a factory of (build number, commit) pairs no other test uses."""

    def factory() -> tuple[int, str]:
        commit = (uuid.uuid4().hex + uuid.uuid4().hex)[:40]
        return next(_build_numbers), commit

    return factory


@pytest.fixture
def environment() -> Callable[[str], str]:
    """Return a factory of environment names no other test uses, like dev-1a2b3c."""

    def factory(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:6]}"

    return factory
