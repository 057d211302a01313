"""The Prometheus alert rules: valid, unit-tested by promtool, on known metrics."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from monitors import metrics

RULES_DIR = Path(metrics.__file__).with_name("rules")
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.test.yml"))
METRIC_NAME = re.compile(r"\bboxoffice_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total",),
    # The bare histogram name is how text refers to the whole family.
    "histogram": ("", "_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus"
    return path


def defined_series() -> set[str]:
    """Return every series name the metrics module's factories register."""
    registry = CollectorRegistry()
    for name, factory in inspect.getmembers(metrics, inspect.isfunction):
        if name.endswith("_metrics") and factory.__module__ == metrics.__name__:
            factory(registry)
    names = set()
    for family in registry.collect():
        for suffix in SUFFIXES[family.type]:
            names.add(family.name + suffix)
    return names


def test_rule_files_exist() -> None:
    assert RULE_FILES, f"no *.rules.yml in {RULES_DIR}"
    assert TEST_FILES, f"no promtool tests in {RULES_DIR / 'tests'}"


def test_promtool_checks_rules() -> None:
    completed = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    completed = subprocess.run(
        [promtool(), "test", "rules", *(path.name for path in TEST_FILES)],
        cwd=RULES_DIR / "tests",
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "SUCCESS" in completed.stdout


def test_rules_use_only_defined_metrics() -> None:
    defined = defined_series()
    for path in RULE_FILES:
        used = set(METRIC_NAME.findall(path.read_text()))
        assert used, f"{path.name} uses no boxoffice_ metric"
        unknown = used - defined
        assert not unknown, f"{path.name} uses undefined metrics {sorted(unknown)}"


def test_every_alert_has_a_unit_test() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for path in TEST_FILES
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert alerts - tested == set()
