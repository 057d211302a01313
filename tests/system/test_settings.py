"""Settings: the AWS conventions for endpoint, region and profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from system.settings import DEFAULT_REGION, Settings


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    config.write_text("[profile staging]\nregion = eu-west-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return config


def test_region_defaults_to_us_east_1(aws_config: Path) -> None:
    assert Settings.from_env().region == DEFAULT_REGION


def test_profile_region_applies(aws_config: Path) -> None:
    assert Settings.from_env(profile="staging").region == "eu-west-2"


def test_region_option_beats_profile(aws_config: Path) -> None:
    settings = Settings.from_env(profile="staging", region="ap-south-1")
    assert settings.region == "ap-south-1"


def test_region_variable_beats_profile(
    aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    assert Settings.from_env(profile="staging").region == "ca-central-1"


def test_endpoint_variable_is_read(
    aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    settings = Settings.from_env()
    assert settings.endpoint_url == "http://127.0.0.1:4566"
    assert settings.is_local


@pytest.mark.parametrize(
    ("endpoint", "local"),
    [
        ("http://localhost:4566", True),
        ("http://[::1]:4566", True),
        ("https://dynamodb.eu-west-2.amazonaws.com", False),
        (None, False),
    ],
)
def test_is_local(endpoint: str | None, local: bool) -> None:
    assert Settings(endpoint_url=endpoint).is_local is local
