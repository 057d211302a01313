"""Probe settings: deadlines, injection stages and their command-line form."""

from __future__ import annotations

import pytest

from synthetic.commands import probe_config_from_args
from synthetic.config import DEFAULT_STAGE_DEADLINES_SECONDS, ProbeConfig
from synthetic.errors import InvalidProbeConfigError
from system.cli import build_parser


def parse(*argv: str) -> ProbeConfig:
    return probe_config_from_args(build_parser().parse_args(["canary", *argv]))


def test_defaults_fit_the_default_interval() -> None:
    config = ProbeConfig()
    assert config.sale_id == "canary"
    assert config.inject_at == "join"
    assert config.total_deadline_seconds < 60
    for stage, seconds in DEFAULT_STAGE_DEADLINES_SECONDS.items():
        assert config.deadline_seconds(stage) == seconds


def test_deadline_options_override_one_stage() -> None:
    config = parse("--deadline", "admission=4", "--total-deadline", "9")
    assert config.deadline_seconds("admission") == 4.0
    assert (
        config.deadline_seconds("forward") == DEFAULT_STAGE_DEADLINES_SECONDS["forward"]
    )
    assert config.total_deadline_seconds == 9.0


def test_inject_at_option() -> None:
    assert parse("--inject-at", "admission").inject_at == "admission"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--deadline", "admission"], "STAGE=SECONDS"),
        (["--deadline", "checkout=3"], "unknown stages"),
        (["--deadline", "join=0"], "join deadline"),
        (["--total-deadline", "-1"], "total deadline"),
        (["--poll-interval", "0"], "poll interval"),
    ],
)
def test_invalid_options_are_rejected(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidProbeConfigError, match=message):
        parse(*argv)


def test_unknown_injection_stage_is_rejected() -> None:
    with pytest.raises(InvalidProbeConfigError, match="purchase"):
        ProbeConfig(inject_at="purchase")
