"""Read the provisioned Grafana files and the PromQL in them, for the tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
DASHBOARDS = REPOSITORY / "dashboards"
GRAFANA = DASHBOARDS / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES_FILE = GRAFANA / "provisioning" / "datasources" / "boxoffice.yml"
PROVIDERS_FILE = GRAFANA / "provisioning" / "dashboards" / "boxoffice.yml"
PROMETHEUS_UID = "boxoffice-prometheus"
CLOUDWATCH_UID = "boxoffice-cloudwatch"

# Grafana's built-in interval variables, given values that suit a scrape
# interval of a few seconds.
BUILTIN_VALUES = {
    "__rate_interval": "20s",
    "__interval": "5s",
    "__range": "1h",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard: a panel's target or a variable."""

    dashboard: str
    where: str  # panel title and refId, or the variable's name
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard}: {self.where}: {self.expr}"


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every panel, the ones inside rows included, but not the rows."""
    for panel in dashboard.get("panels", []):
        if panel["type"] == "row":
            yield from panels(panel)
        else:
            yield panel


def prometheus_queries(
    dashboard: dict[str, Any], builtins: dict[str, str] | None = None
) -> list[Query]:
    """Return the dashboard's PromQL with every Grafana variable substituted.

    A template variable becomes its "All" value (a regex matching any
    value), a built-in interval one of ``builtins`` (default
    ``BUILTIN_VALUES``).
    """
    values = {**BUILTIN_VALUES, **(builtins or {})}
    for variable in dashboard.get("templating", {}).get("list", []):
        values[variable["name"]] = variable.get("allValue") or ".*"
    title = dashboard["title"]
    found = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("uid") != PROMETHEUS_UID:
                continue
            where = f"{panel['title']} (panel {panel['id']}, {target['refId']})"
            found.append(Query(title, where, substitute(target["expr"], values)))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("datasource", {}).get("uid") != PROMETHEUS_UID:
            continue
        match = LABEL_VALUES.match(variable["query"]["query"])
        assert match, f"{title}: variable {variable['name']} is not label_values()"
        where = f"variable {variable['name']}"
        found.append(Query(title, where, substitute(match.group(1), values)))
    return found


def substitute(expr: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"Unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return VARIABLE.sub(replace, expr)


def provisioned_datasources() -> dict[str, str]:
    """Return the provisioned data sources' types by uid."""
    config = yaml.safe_load(DATASOURCES_FILE.read_text())
    return {source["uid"]: source["type"] for source in config["datasources"]}
