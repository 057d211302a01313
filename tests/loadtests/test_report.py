"""The HTML report: self-contained, with every chart and the threshold table."""

from __future__ import annotations

import re

from loadtests import report, thresholds
from loadtests.measures import RunMeasures
from loadtests.plan import SpikePlan, Targets
from loadtests.series import Series

PLAN = SpikePlan(
    sale_id="report-test",
    targets=Targets("us-east-1", "pool", "queue", "sales"),
    start_at=1_800_000_000.0,
)


def rendered() -> str:
    series = Series()
    for second in range(40):
        series.count("arrivals", second, 10)
        series.count("joins", second, 10)
        series.gauge("waiting", second, 10 * second)
        series.gauge("in_line", second, 10 * second)
        series.count("admissions", second, 2)
        series.observe("join", second, 20 + second)
        series.observe("poll_fan", second, 5)
        series.observe("buy", second, 80)
    measures = RunMeasures(
        values={"lost_fans": 3, "join_latency_p95_seconds": 0.25},
        time_in_queue_seconds=[1.0, 2.0, 3.5],
        admission_order=[(1, 1), (3, 2), (2, 3)],
        position_pairs=[(10, 9), (5, 5)],
        outcomes={"purchased": 2, "sold_out": 30},
    )
    limits = thresholds.parse(
        {
            "stack": {"lost_fans": "== 0", "join_latency_p95_seconds": "<= 2"},
            "generator": {"cpu_warnings": "== 0"},
        }
    )
    verdicts = thresholds.evaluate(limits, measures.values)
    summary = {
        "verdict": "failed",
        "headline": "FAILED: 1 threshold(s) not met.",
        "target": "embedded stack",
        "facts": {
            "fans": "400",
            "admitted": "80",
            "sold": "10",
            "stock": "10",
            "lost": "3",
        },
    }
    return report.render(PLAN, measures, series, verdicts, summary)


def test_report_is_self_contained() -> None:
    html = rendered()
    assert "<script src=" not in html
    assert "Plotly.newPlot" in html
    assert len(re.findall(r"Plotly\.newPlot", html)) == 7


def test_report_shows_thresholds_and_verdict() -> None:
    html = rendered()
    assert "FAILED: 1 threshold(s) not met." in html
    row = re.search(r'<tr class="FAIL">.*?</tr>', html, re.S)
    assert row is not None
    assert "lost_fans" in row.group(0)
    assert "== 0" in row.group(0)
    assert "no data" in html  # cpu_warnings was not measured here
    for title in (
        "The line over time",
        "Joins and admissions per second",
        "Latency percentiles over time",
        "Time in queue",
        "Admission order against queue number",
    ):
        assert title in html


def test_values_format_for_tables() -> None:
    assert report.format_value(None) == "no data"
    assert report.format_value(12345) == "12,345"
    assert report.format_value(2.0) == "2"
    assert report.format_value(0.123456) == "0.123"
