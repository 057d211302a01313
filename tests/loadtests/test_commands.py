"""`boxoffice spike` options: the plan they build, per arrival profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.commands import plan_from_args
from loadtests.errors import SpikeConfigError
from loadtests.plan import CSV, PRESALE, TOUR_2022, SpikePlan, Targets
from system.cli import build_parser

TARGETS = Targets("us-east-1", "pool", "queue", "sales")


def plan_for(*options: str) -> SpikePlan:
    args = build_parser().parse_args(["spike", *options])
    return plan_from_args(args, TARGETS, 1_800_000_000.0)


def test_default_is_scaled_tour_2022() -> None:
    plan = plan_for()
    assert plan.profile == TOUR_2022
    assert plan.fans == 1500
    assert plan.stock == 214
    assert plan.presale_share == 0.5
    assert plan.sale_id.startswith("spike-")


def test_presale_profile_takes_explicit_sizes() -> None:
    plan = plan_for(
        "--arrivals=presale", "--fans=200", "--stock=80", "--presale-share=0.1"
    )
    assert plan.profile == PRESALE
    assert (plan.fans, plan.stock, plan.presale_share) == (200, 80, 0.1)


def test_csv_profile_counts_its_fans(tmp_path: Path) -> None:
    path = tmp_path / "arrivals.csv"
    path.write_text("second,fans\n0,3\n1,0\n2,7\n")
    plan = plan_for("--arrivals=csv", f"--arrivals-csv={path}", "--presale-seconds=1")
    assert plan.profile == CSV
    assert plan.fans == 10
    assert plan.arrivals_per_second == (3, 0, 7)


def test_csv_profile_needs_a_file() -> None:
    with pytest.raises(SpikeConfigError, match="--arrivals-csv"):
        plan_for("--arrivals=csv")


def test_help_names_units() -> None:
    subcommands = build_parser()._subparsers._group_actions[0]  # argparse has no API
    text = subcommands.choices["spike"].format_help()
    for phrase in ("SECONDS", "in seconds", "TICKETS", "--workers N", "--seed"):
        assert phrase in text
