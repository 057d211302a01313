"""Thresholds: the YAML format, the defaults and the verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests import thresholds
from loadtests.errors import SpikeConfigError
from loadtests.measures import DESCRIPTIONS


def test_defaults_load_and_name_real_measures() -> None:
    limits = thresholds.load()
    assert limits
    assert {t.measure for t in limits} <= set(DESCRIPTIONS)
    sections = {t.section for t in limits}
    assert sections == {thresholds.STACK, thresholds.GENERATOR}
    oversell = [t for t in limits if t.measure == "oversold_tickets"]
    assert [(t.operator, t.limit) for t in oversell] == [("==", 0.0)]


@pytest.mark.parametrize(
    ("condition", "value", "passed"),
    [
        ("<= 2", 2.0, True),
        ("<= 2", 2.1, False),
        ("< 2", 2.0, False),
        (">= 0.99", 0.99, True),
        ("> 1", 1, False),
        ("== 0", 0, True),
        ("== 0", 3, False),
    ],
)
def test_verdicts_compare_values(condition: str, value: float, passed: bool) -> None:
    limits = thresholds.parse({"stack": {"lost_fans": condition}})
    [verdict] = thresholds.evaluate(limits, {"lost_fans": value})
    assert verdict.passed is passed
    assert verdict.failed is (not passed)


def test_missing_value_is_no_data_not_failure() -> None:
    limits = thresholds.parse({"stack": {"time_in_queue_p95_seconds": "<= 5"}})
    [verdict] = thresholds.evaluate(limits, {})
    assert verdict.passed is None
    assert verdict.failed is False


@pytest.mark.parametrize(
    "data",
    [
        {"stack": {"no_such_measure": "<= 1"}},
        {"stack": {"lost_fans": "about 3"}},
        {"stack": {"lost_fans": "<= nan"}},
        {"other": {}},
        ["stack"],
        {"stack": ["lost_fans"]},
    ],
)
def test_invalid_entries_are_rejected(data: object) -> None:
    with pytest.raises(SpikeConfigError):
        thresholds.parse(data)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text("stack: [unclosed")
    with pytest.raises(SpikeConfigError, match=r"slo\.yaml"):
        thresholds.load(path)
    with pytest.raises(SpikeConfigError, match=r"missing\.yaml"):
        thresholds.load(tmp_path / "missing.yaml")
