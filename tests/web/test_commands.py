"""``boxoffice pages``: the config.json a deployment of the pages needs."""

from __future__ import annotations

import json
from pathlib import Path

from system.cli import main
from system.embedded import EmbeddedState
from system.stack import StackResources


def test_pages_writes_config_for_stack(
    stack: EmbeddedState, resources: StackResources, tmp_path: Path
) -> None:
    argv = [
        "pages",
        "--write-config",
        str(tmp_path / "site"),
        "--sale-id",
        "spring-tour",
        "--stack",
        stack.stack_name,
        "--endpoint-url",
        stack.endpoint_url,
    ]

    assert main(argv) == 0

    config = json.loads((tmp_path / "site" / "config.json").read_text())
    assert config == {
        "region": stack.settings.region,
        "endpoint_url": stack.endpoint_url,
        "identity_pool_id": resources.identity_pool_id,
        "queue_table": resources.queue_table,
        "sales_table": resources.sales_table,
        "sale_id": "spring-tour",
    }


def test_pages_without_a_stack_fails(tmp_path: Path) -> None:
    assert main(["pages", "--home", str(tmp_path)]) == 2
