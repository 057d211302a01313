"""The Grafana dashboards, their provisioning and the Prometheus configuration."""

from __future__ import annotations

import inspect
import re
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitors import metrics
from system import prometheus
from tests.dashboards import grafana
from tests.dashboards.sdk_schema import schema_errors

PROMTOOL = "/usr/bin/promtool"
RULES_FOLDER = grafana.REPOSITORY / "monitors" / "rules"
# Series Prometheus itself makes from the alert rules, not from an exporter.
PROMETHEUS_SERIES = {"ALERTS"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}
# AWS metrics the CloudWatch dashboard may use, by namespace, from the SQS,
# Lambda and DynamoDB CloudWatch metric references.
CLOUDWATCH_METRICS = {
    "AWS/SQS": {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
        "NumberOfMessagesSent",
        "NumberOfMessagesDeleted",
    },
    "AWS/Lambda": {"Invocations", "Errors", "Throttles", "IteratorAge"},
    "AWS/DynamoDB": {
        "ThrottledRequests",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
        "ConsumedWriteCapacityUnits",
    },
}
# Figures each dashboard must show, as the metric names that carry them.
REQUIRED_METRICS = {
    "onsale-overview.json": {
        "boxoffice_funnel_fans_numbered_total",  # fans joined, joins/s
        "boxoffice_fans_waiting",
        "boxoffice_admissions_total",  # admitted, admissions/s
        "boxoffice_windows_in_use",
        "boxoffice_windows",
        "boxoffice_tickets_left",
        "boxoffice_work_queue_messages",
        "boxoffice_oldest_work_message_age_seconds",
        "boxoffice_dead_letter_messages",
        "boxoffice_forwarder_errors_total",
        "boxoffice_admission_rate_per_second",  # estimated wait
    },
    "canary.json": {
        "boxoffice_canary_runs_total",
        "boxoffice_canary_stage_duration_seconds_bucket",
        "boxoffice_canary_last_success_timestamp_seconds",
        "ALERTS",
    },
    "loadtest.json": {
        "boxoffice_loadtest_users",
        "boxoffice_loadtest_arrivals_total",
        "boxoffice_loadtest_requests_total",
        "boxoffice_loadtest_request_failures_total",
        "boxoffice_loadtest_request_duration_seconds_bucket",
        "boxoffice_loadtest_time_in_queue_seconds_bucket",
        "boxoffice_loadtest_fairness_inversions_total",
        "boxoffice_loadtest_threshold_status",
    },
}
REQUIRED_CLOUDWATCH = {
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    ("AWS/Lambda", "Errors"),
    ("AWS/Lambda", "IteratorAge"),
    ("AWS/DynamoDB", "ThrottledRequests"),
}

dashboard_files = pytest.mark.parametrize(
    "path", grafana.DASHBOARD_FILES, ids=lambda path: path.name
)


def defined_metric_names() -> set[str]:
    """Return every series name the metrics module's factories define."""
    registry = CollectorRegistry()
    for name, factory in inspect.getmembers(metrics, inspect.isfunction):
        if name.endswith("_metrics") and factory.__module__ == metrics.__name__:
            factory(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def metric_names(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def all_prometheus_queries() -> list[grafana.Query]:
    queries = []
    for path in grafana.DASHBOARD_FILES:
        queries.extend(grafana.prometheus_queries(grafana.load(path)))
    return queries


def alert_rule_queries() -> list[grafana.Query]:
    queries = []
    for path in sorted(RULES_FOLDER.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                queries.append(grafana.Query(path.name, name, rule["expr"]))
    return queries


@dashboard_files
def test_dashboard_fits_sdk_types(path: Path) -> None:
    errors = schema_errors(grafana.load(path))

    assert errors == []


def test_sdk_check_catches_mistakes() -> None:
    dashboard = grafana.load(grafana.GRAFANA / "dashboards" / "canary.json")
    first, second = list(grafana.panels(dashboard))[:2]
    first["gridPos"]["h"] = "8"
    first["gridpos"] = first["gridPos"]
    second["options"]["reduceOptions"]["calcs"] = "last"
    second["targets"][0]["range"] = "yes"
    dashboard["graphTooltip"] = 7

    errors = "\n".join(schema_errors(dashboard))

    assert "gridpos: not a field" in errors
    assert "grid_pos.h: '8' is not a int" in errors
    assert "reduce_options.calcs: expected a list" in errors
    assert "range_val: 'yes' is not a bool" in errors
    assert "graph_tooltip: 7 is not a DashboardCursorSync" in errors


@dashboard_files
def test_dashboard_identity(path: Path) -> None:
    dashboard = grafana.load(path)

    assert re.fullmatch(r"boxoffice-[a-z-]{1,30}", dashboard["uid"])
    assert "id" not in dashboard  # Grafana assigns ids; a fixed one clashes
    assert "boxoffice" in dashboard["tags"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_uids_unique() -> None:
    uids = [grafana.load(path)["uid"] for path in grafana.DASHBOARD_FILES]

    assert len(uids) == len(set(uids))


@dashboard_files
def test_panels_use_provisioned_datasource(path: Path) -> None:
    sources = grafana.provisioned_datasources()
    dashboard = grafana.load(path)

    for panel in grafana.panels(dashboard):
        if panel["type"] == "text":
            continue
        where = f"{path.name}: {panel['title']}"
        source = panel["datasource"]
        assert sources.get(source["uid"]) == source["type"], where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["datasource"] == source, where
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), where
    for variable in dashboard["templating"]["list"]:
        if "datasource" in variable:
            source = variable["datasource"]
            assert sources.get(source["uid"]) == source["type"], variable["name"]


def test_datasources_have_fixed_uids() -> None:
    sources = grafana.provisioned_datasources()

    assert sources == {
        grafana.PROMETHEUS_UID: "prometheus",
        grafana.CLOUDWATCH_UID: "cloudwatch",
    }


def test_datasource_points_at_local_prometheus() -> None:
    config = yaml.safe_load(grafana.DATASOURCES_FILE.read_text())
    source = next(s for s in config["datasources"] if s["type"] == "prometheus")
    scrape = yaml.safe_load(prometheus.CONFIG_TEMPLATE.read_text())

    assert config["apiVersion"] == 1
    assert source["url"] == f"http://127.0.0.1:{prometheus.DEFAULT_PORT}"
    assert source["jsonData"]["timeInterval"] == scrape["global"]["scrape_interval"]


def test_dashboard_provider() -> None:
    config = yaml.safe_load(grafana.PROVIDERS_FILE.read_text())
    (provider,) = config["providers"]

    assert config["apiVersion"] == 1
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/boxoffice"


def test_promql_parses_with_promtool(tmp_path: Path) -> None:
    queries = all_prometheus_queries()
    rules = [
        {"record": f"boxoffice:check_{index}", "expr": query.expr}
        for index, query in enumerate(queries)
    ]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))

    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(queries)} rules found" in checked.stdout


def test_promtool_rejects_bad_promql(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    rule = {"record": "boxoffice:bad", "expr": "sum by (sale) (rate(x[5m])"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [rule]}]}))

    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, check=False
    )

    assert checked.returncode != 0


def test_queries_use_defined_metrics() -> None:
    defined = defined_metric_names() | PROMETHEUS_SERIES
    unknown = []
    for query in all_prometheus_queries() + alert_rule_queries():
        missing = metric_names(query.expr) - defined
        unknown.extend(f"{name} in {query}" for name in sorted(missing))

    assert unknown == []


def test_metric_names_found_in_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{sale=~".*"}[1m])))'
        " / on() group_left b or vector(0) unless time() - c offset 5m"
    )

    assert metric_names(expr) == {"a_bucket", "b", "c"}


@pytest.mark.parametrize("name", sorted(REQUIRED_METRICS))
def test_dashboard_shows_required_figures(name: str) -> None:
    dashboard = grafana.load(grafana.GRAFANA / "dashboards" / name)
    used = set()
    for query in grafana.prometheus_queries(dashboard):
        used |= metric_names(query.expr)

    assert REQUIRED_METRICS[name] - used == set()


def test_cloudwatch_dashboard_metrics() -> None:
    dashboard = grafana.load(
        grafana.GRAFANA / "dashboards" / "onsale-overview-cloudwatch.json"
    )
    used = set()
    for panel in grafana.panels(dashboard):
        for target in panel.get("targets", []):
            if target["metricEditorMode"] == 1:  # metric math on other queries
                continue
            namespace, metric = target["namespace"], target["metricName"]
            assert metric in CLOUDWATCH_METRICS[namespace], panel["title"]
            used.add((namespace, metric))

    assert REQUIRED_CLOUDWATCH - used == set()


def test_cloudwatch_variables_match_template() -> None:
    dashboard = grafana.load(
        grafana.GRAFANA / "dashboards" / "onsale-overview-cloudwatch.json"
    )
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    template = (grafana.REPOSITORY / "system" / "template.yaml").read_text()

    # CloudFormation names an unnamed resource STACK-LOGICALID-SUFFIX.
    for name, logical_ids in {
        "work_queue": ["WorkQueue"],
        "dead_letter_queues": ["DeadLetterQueue", "WorkDeadLetterQueue"],
        "forwarder": ["ForwarderFunction"],
    }.items():
        for logical_id in logical_ids:
            assert f"\n  {logical_id}:\n" in template
            assert f"{logical_id}-" in variables[name]["regex"], name


def test_prometheus_config_is_valid() -> None:
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(prometheus.CONFIG_TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_config_scrapes_every_part() -> None:
    config = yaml.safe_load(prometheus.CONFIG_TEMPLATE.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}

    assert jobs == set(prometheus.JOBS)
    assert config["rule_files"] == ["../monitors/rules/*.yml"]


def test_rendered_config_is_valid(tmp_path: Path) -> None:
    path = prometheus.render_config(
        tmp_path,
        {prometheus.WINDOWS_JOB: ["127.0.0.1:1234"]},
        scrape_interval="1s",
    )
    rendered = yaml.safe_load(path.read_text())
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert rendered["global"]["scrape_interval"] == "1s"
    assert rendered["rule_files"] == [str(RULES_FOLDER / "*.yml")]
    windows = (tmp_path / "targets" / f"{prometheus.WINDOWS_JOB}.json").read_text()
    assert "127.0.0.1:1234" in windows
    locust = (tmp_path / "targets" / f"{prometheus.LOCUST_JOB}.json").read_text()
    assert "127.0.0.1:9646" in locust  # the template's default stays
