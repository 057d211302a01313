"""Pass/fail thresholds (SLOs) on the measures of a spike run.

Thresholds live in a YAML file with two sections. ``stack`` thresholds judge
the system under test: any failure makes the run exit non-zero. ``generator``
thresholds judge the load generator: any failure marks the run invalid, so a
starved Locust is never blamed on the stack. Each entry is
``measure: "OPERATOR LIMIT"`` with OPERATOR one of < <= > >= ==.
``loadtests/thresholds.yaml`` holds the defaults and says why each is set.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from loadtests.errors import SpikeConfigError
from loadtests.measures import DESCRIPTIONS, Value

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.yaml")
STACK = "stack"
GENERATOR = "generator"
SECTIONS = (STACK, GENERATOR)
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Threshold:
    """One limit on one measure."""

    section: str
    measure: str
    operator: str
    limit: float

    def __str__(self) -> str:
        return f"{self.measure} {self.operator} {self.limit:g}"


@dataclass(frozen=True)
class Verdict:
    """A threshold against the measured value: passed, failed or no data."""

    threshold: Threshold
    value: Value

    @property
    def passed(self) -> bool | None:
        """Whether the value meets the limit; None when nothing was measured."""
        if self.value is None:
            return None
        check = OPERATORS[self.threshold.operator]
        return bool(check(float(self.value), self.threshold.limit))

    @property
    def failed(self) -> bool:
        return self.passed is False


def load(path: Path | None = None) -> list[Threshold]:
    """Read thresholds from ``path``, or the defaults shipped with the package."""
    source = path or DEFAULT_THRESHOLDS
    try:
        data = yaml.safe_load(source.read_text())
    except OSError as exc:
        raise SpikeConfigError(
            f"Cannot read thresholds file {str(source)!r}: {exc}"
        ) from exc
    except yaml.YAMLError as exc:
        raise SpikeConfigError(
            f"Thresholds file {str(source)!r} is not YAML: {exc}"
        ) from exc
    return parse(data, str(source))


def parse(data: object, source: str = "thresholds") -> list[Threshold]:
    """Turn the YAML mapping of sections into thresholds, checking every entry."""
    if not isinstance(data, Mapping) or set(data) - set(SECTIONS):
        raise SpikeConfigError(
            f"{source}: expected a mapping with the sections {', '.join(SECTIONS)}."
        )
    thresholds = []
    for section in SECTIONS:
        entries = data.get(section) or {}
        if not isinstance(entries, Mapping):
            raise SpikeConfigError(f"{source}: section {section!r} must be a mapping.")
        for measure, condition in entries.items():
            thresholds.append(_parse_entry(source, section, str(measure), condition))
    return thresholds


def evaluate(thresholds: list[Threshold], values: Mapping[str, Value]) -> list[Verdict]:
    """Return each threshold's verdict on the measured values."""
    return [Verdict(t, values.get(t.measure)) for t in thresholds]


def _parse_entry(
    source: str, section: str, measure: str, condition: object
) -> Threshold:
    if measure not in DESCRIPTIONS:
        raise SpikeConfigError(
            f"{source}: {section}.{measure} names no measure; see docs/spike.md for "
            "the list."
        )
    text = str(condition).strip()
    for symbol in OPERATORS:  # two-character operators are tried first
        if text.startswith(symbol):
            try:
                limit = float(text[len(symbol) :])
            except ValueError:
                break
            if not math.isfinite(limit):
                break
            return Threshold(section, measure, symbol, limit)
    raise SpikeConfigError(
        f"{source}: {section}.{measure} is {condition!r}; write an operator "
        '(< <= > >= ==) and a number, such as "<= 2.5".'
    )
