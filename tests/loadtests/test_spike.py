"""`boxoffice spike` end to end on the embedded stack: short runs of a few
hundred fans, each checked against what the stack's tables hold."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from boto3.dynamodb.conditions import Attr

from loadtests import outputs
from loadtests.plan import BOT
from system import embedded, schema
from system.cli import main
from system.embedded import EmbeddedState, free_port
from system.stack import StackResources

# Correctness and fairness as in the defaults; latency limits loose enough
# for a shared 2-core CI machine, where the point is the funnel, not speed.
CI_THRESHOLDS = {
    "stack": {
        "oversold_tickets": "== 0",
        "sold_mismatch_tickets": "== 0",
        "tickets_left_mismatch": "== 0",
        "double_purchases": "== 0",
        "bot_tickets": "== 0",
        "lost_fans": "== 0",
        "join_failures": "== 0",
        "refreshers_lost_place": "== 0",
        "fairness_max_early_places": "<= 25",
        "join_latency_p95_seconds": "<= 20",
    },
    "generator": {
        "users_reached_ratio": ">= 1",
        "fans_arrived_ratio": ">= 0.99",
        "workers_done_ratio": ">= 1",
    },
}
SHORT_RUN = (
    "--arrivals=presale",
    "--presale-seconds=3",
    "--spike-seconds=5",
    "--poll-min-seconds=1",
    "--poll-max-seconds=5",
    "--checkout-seconds=0.5",
    "--claim-timeout-seconds=5",
    "--windows=10",
)


def spike(
    stack: EmbeddedState, folder: Path, *options: str
) -> tuple[int, dict[str, Any]]:
    """Run `boxoffice spike` on the session's stack; return code and summary."""
    limits = folder.parent / f"{folder.name}-thresholds.yaml"
    limits.write_text(yaml.safe_dump(CI_THRESHOLDS))
    code = main(
        [
            "spike",
            f"--home={stack.home}",
            f"--report-dir={folder}",
            f"--thresholds={limits}",
            *SHORT_RUN,
            *options,
        ]
    )
    summary = json.loads((folder / outputs.SUMMARY_FILE).read_text())
    return code, summary


def orders_of(dynamodb: Any, resources: StackResources, sale_id: str) -> list[Any]:
    table = dynamodb.Table(resources.orders_table)
    items: list[Any] = []
    kwargs: dict[str, Any] = {"FilterExpression": Attr(schema.SALE_ID).eq(sale_id)}
    while True:
        page = table.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def sale_of(folder: Path) -> str:
    return str(json.loads((folder / outputs.PLAN_FILE).read_text())["sale_id"])


def test_short_spike_matches_stack_truth(
    stack: EmbeddedState,
    resources: StackResources,
    dynamodb: Any,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "run"
    code, summary = spike(
        stack,
        folder,
        "--fans=300",
        "--stock=150",
        "--duration-cap-seconds=100",
        "--mix=patient=60,refresher=10,second-tab=10,abandoner=10,late=5,bot=5",
    )
    values = summary["measures"]
    assert code == 0, summary["thresholds"]
    sale_id = sale_of(folder)
    orders = orders_of(dynamodb, resources, sale_id)
    sold = sum(int(order[schema.QUANTITY]) for order in orders)
    assert sold == 150, "demand exceeds stock, so the sale sells out"
    assert values["tickets_sold"] == sold
    assert values["orders"] == len(orders)
    assert values["tickets_sold_seen_by_fans"] == sold
    assert values["oversold_tickets"] == 0

    records = outputs.read_fans(folder)
    assert len(records) == 300
    fans = dynamodb.Table(resources.queue_table)
    for record in records:
        if record["queue_number"] is None:
            continue
        item = fans.get_item(Key={schema.FAN_ID: record["fan_id"]})["Item"]
        assert int(item[schema.QUEUE_NUMBER]) == record["queue_number"]
    admitted = sum(
        1
        for record in records
        if record["behaviour"] != BOT
        and schema.ADMITTED_AT
        in fans.get_item(Key={schema.FAN_ID: record["fan_id"]}).get("Item", {})
    )
    assert values["fans_admitted"] == admitted

    html = (folder / outputs.REPORT_FILE).read_text()
    assert f"<b>{sold}</b>tickets sold (DynamoDB) of 150" in html
    assert "PASSED: every threshold met." in html
    for name in ("locust.html", "locust_stats.csv", "locust_stats_history.csv"):
        assert (folder / name).exists(), name
    with (folder / "locust_stats.csv").open() as handle:
        names = {row["Name"] for row in csv.DictReader(handle)}
    assert {
        "get_id",
        "get_credentials",
        "join",
        "poll_fan",
        "poll_sale",
        "buy",
    } <= names


def test_stopped_window_processor_fails_thresholds(
    stack: EmbeddedState, tmp_path: Path
) -> None:
    embedded.stop_service(stack, "processor")
    try:
        code, summary = spike(
            stack,
            tmp_path / "broken",
            "--fans=120",
            "--stock=50",
            "--duration-cap-seconds=25",
            "--mix=patient=1",
        )
    finally:
        embedded.start_services(stack)
    assert code == 1
    assert summary["verdict"] == "failed"
    failed = {t["measure"]: t for t in summary["thresholds"] if t["passed"] is False}
    assert "lost_fans" in failed
    assert failed["lost_fans"]["value"] > 0
    assert summary["measures"]["fans_admitted"] == 0
    assert not any(t["section"] == "generator" for t in failed.values())


def test_two_local_workers_share_the_crowd(
    stack: EmbeddedState, tmp_path: Path
) -> None:
    folder = tmp_path / "distributed"
    code, summary = spike(
        stack,
        folder,
        "--workers=2",
        "--fans=200",
        "--stock=100",
        "--duration-cap-seconds=100",
    )
    assert code == 0, summary["thresholds"]
    generator = json.loads((folder / outputs.GENERATOR_FILE).read_text())
    assert [w["worker"] for w in generator["workers"]] == [0, 1]
    assert all(w["arrived"] > 0 for w in generator["workers"])
    assert generator["users_reached"] == 2
    ids = [record["arrival_id"] for record in outputs.read_fans(folder)]
    assert sorted(ids) == list(range(200))
    master_log = (folder / "locust-master.log").read_text()
    assert master_log.count("reported as ready") >= 2


def test_bots_never_get_tickets(
    stack: EmbeddedState, resources: StackResources, dynamodb: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "bots"
    code, summary = spike(
        stack,
        folder,
        "--fans=200",
        "--stock=120",
        "--mix=patient=60,bot=40",
        "--duration-cap-seconds=100",
    )
    assert code == 0, summary["thresholds"]
    records = outputs.read_fans(folder)
    bots = [record for record in records if record["behaviour"] == BOT]
    assert len(bots) > 40
    assert {bot["outcome"] for bot in bots} == {"bot_denied"}
    assert all(bot["bought"] == 0 for bot in bots)
    bot_ids = {bot["fan_id"] for bot in bots}
    orders = orders_of(dynamodb, resources, sale_of(folder))
    assert orders, "the real fans bought"
    assert not [order for order in orders if order[schema.FAN_ID] in bot_ids]
    assert summary["measures"]["bot_tickets"] == 0
    with (folder / "locust_stats.csv").open() as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(rows["bot_buy"]["Request Count"]) >= len(bots)
    assert int(rows["bot_buy"]["Failure Count"]) == 0, "every bot was turned away"


def test_missing_stack_fails_before_load(
    stack: EmbeddedState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "missing"
    code = main(
        [
            "spike",
            "--stack=no-such-stack",
            f"--endpoint-url={stack.endpoint_url}",
            f"--report-dir={folder}",
        ]
    )
    assert code == 2
    assert "no-such-stack" in capsys.readouterr().err
    assert not (folder / outputs.PLAN_FILE).exists()


def test_unreachable_endpoint_fails_before_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "unreachable"
    code = main(
        [
            "spike",
            "--stack=boxoffice-local",
            f"--endpoint-url=http://127.0.0.1:{free_port()}",
            f"--report-dir={folder}",
        ]
    )
    assert code == 2
    assert "Could not read stack" in capsys.readouterr().err
    assert not (folder / outputs.PLAN_FILE).exists()


def test_missing_credentials_fail_before_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    code = main(
        ["spike", "--stack=staging", "--region=eu-west-1", f"--report-dir={tmp_path}"]
    )
    assert code == 2
    assert "No AWS credentials" in capsys.readouterr().err


def test_write_plan_creates_sale_only(
    stack: EmbeddedState, resources: StackResources, dynamodb: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "plan-only"
    code = main(
        [
            "spike",
            f"--home={stack.home}",
            f"--report-dir={folder}",
            "--write-plan",
            "--sale-id=hand-run",
            "--fans=50",
        ]
    )
    assert code == 0
    plan = json.loads((folder / outputs.PLAN_FILE).read_text())
    assert plan["sale_id"] == "hand-run"
    assert plan["targets"]["queue_table"] == resources.queue_table
    assert not (folder / "locust.html").exists()
    sale = dynamodb.Table(resources.sales_table).get_item(
        Key={schema.SALE_ID: "hand-run"}
    )["Item"]
    assert float(sale[schema.ON_SALE_AT]) > plan["start_at"]
