"""Names and readers of the files a spike run writes into its report folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PLAN_FILE = "plan.json"
PROGRESS_FILE = "progress.json"  # rewritten once a second by the Locust master
FANS_FILE = "fans.jsonl"  # one JSON object per fan
POSITIONS_FILE = "positions.json"  # sampled (time, queue number, people ahead)
SERIES_FILE = "timeseries.json"
GENERATOR_FILE = "generator.json"  # the load generator's health
TRUTH_FILE = "truth.json"  # what the stack's tables hold after the run
SUMMARY_FILE = "summary.json"  # measures, thresholds and verdict
REPORT_FILE = "report.html"
LOCUST_PREFIX = "locust"  # locust.html, locust_stats.csv, ...


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON, atomically, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(partial, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def read_fans(folder: Path) -> list[dict[str, Any]]:
    """Return the fans' records of a finished run."""
    path = folder / FANS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]
