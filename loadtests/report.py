"""The queue report: one self-contained HTML file with Plotly charts.

It shows the line over time (fans arriving, in line, waiting, admitted),
joins and admissions per second, latency percentiles over time, the
time-in-queue distribution, admission order against queue number, the
people-ahead shown against the truth, and the threshold table.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from loadtests import series as names
from loadtests.measures import DESCRIPTIONS, RunMeasures
from loadtests.plan import SpikePlan
from loadtests.series import Series, merge_histograms, percentile
from loadtests.thresholds import Verdict

# Latency charts merge this many seconds per point, so sparse seconds (a few
# purchases) still give a percentile.
LATENCY_WINDOW_SECONDS = 5
LATENCY_CHARTS = (("join", "Join"), ("poll_fan", "Poll"), ("buy", "Buy"))
# Scatter plots keep at most this many points, so the file stays small.
MAX_SCATTER_POINTS = 20_000

_templates = Environment(
    loader=PackageLoader("loadtests", "templates"),
    autoescape=select_autoescape(["html"]),
)


def render(
    plan: SpikePlan,
    measures: RunMeasures,
    series: Series,
    verdicts: Sequence[Verdict],
    summary: Mapping[str, Any],
) -> str:
    """Return the report as one HTML page with the Plotly library inlined."""
    on_sale = plan.on_sale_offset_seconds
    charts = [
        ("The line over time", _line_chart(series, on_sale)),
        ("Joins and admissions per second", _rates_chart(series, on_sale)),
        ("Latency percentiles over time", _latency_chart(series)),
        ("Time in queue", _time_in_queue_chart(measures.time_in_queue_seconds)),
        ("Admission order against queue number", _fairness_chart(measures)),
        ("People ahead: shown against actual", _position_chart(measures)),
        ("How the fans' visits ended", _outcomes_chart(measures.outcomes)),
    ]
    rows = [
        {
            "section": verdict.threshold.section,
            "measure": verdict.threshold.measure,
            "description": DESCRIPTIONS.get(verdict.threshold.measure, ""),
            "value": format_value(verdict.value),
            "limit": f"{verdict.threshold.operator} {verdict.threshold.limit:g}",
            "status": _status(verdict),
        }
        for verdict in verdicts
    ]
    started = datetime.datetime.fromtimestamp(plan.start_at, datetime.UTC)
    return _templates.get_template("report.html").render(
        plan=plan,
        summary=summary,
        started=started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        plotly_js=get_plotlyjs(),
        charts=[
            (title, chart.to_html(full_html=False, include_plotlyjs=False))
            for title, chart in charts
        ],
        thresholds=rows,
        measures=[
            (name, format_value(value), DESCRIPTIONS.get(name, ""))
            for name, value in measures.values.items()
        ],
    )


def write(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")


def format_value(value: Any) -> str:
    """Format a measure for tables: integers plain, others to 3 significant digits."""
    if value is None:
        return "no data"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    return f"{value:.3g}"


def _status(verdict: Verdict) -> str:
    if verdict.passed is None:
        return "no data"
    return "pass" if verdict.passed else "FAIL"


def _seconds(series: Series, name: str) -> tuple[list[int], list[int]]:
    counts = series.counts.get(name)
    data = counts or series.gauge_totals(name)
    if not data:
        return [], []
    xs = list(range(max(data) + 1))
    if counts:
        return xs, [data.get(second, 0) for second in xs]
    values = []
    last = 0
    for second in xs:  # a gauge keeps its value over a skipped second
        last = data.get(second, last)
        values.append(last)
    return xs, values


def _cumulative(values: list[int]) -> list[int]:
    total = 0
    out = []
    for value in values:
        total += value
        out.append(total)
    return out


def _layout(figure: go.Figure, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(
        template="plotly_white",
        height=420,
        margin={"l": 60, "r": 20, "t": 30, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        xaxis_title=x_title,
        yaxis_title=y_title,
    )
    return figure


def _line_chart(series: Series, on_sale: float) -> go.Figure:
    figure = go.Figure()
    for name, label, cumulative in (
        (names.ARRIVALS, "fans arrived", True),
        (names.IN_LINE, "in line (waiting or at a window)", False),
        (names.WAITING, "waiting for their turn", False),
        (names.ADMISSIONS, "admitted", True),
        (names.SOLD_OUT, "told sold out", True),
    ):
        xs, ys = _seconds(series, name)
        figure.add_trace(
            go.Scatter(x=xs, y=_cumulative(ys) if cumulative else ys, name=label)
        )
    figure.add_vline(x=on_sale, line_dash="dot", annotation_text="on sale")
    return _layout(figure, "seconds since start", "fans")


def _rates_chart(series: Series, on_sale: float) -> go.Figure:
    figure = go.Figure()
    for name, label in (
        (names.JOINS, "joins/s"),
        (names.ADMISSIONS, "admissions/s"),
        (names.ORDERS, "orders/s"),
    ):
        xs, ys = _seconds(series, name)
        figure.add_trace(go.Scatter(x=xs, y=ys, name=label, mode="lines"))
    figure.add_vline(x=on_sale, line_dash="dot", annotation_text="on sale")
    return _layout(figure, "seconds since start", "per second")


def _latency_chart(series: Series) -> go.Figure:
    figure = make_subplots(
        rows=1,
        cols=len(LATENCY_CHARTS),
        subplot_titles=[title for _, title in LATENCY_CHARTS],
        shared_yaxes=False,
    )
    for column, (name, _) in enumerate(LATENCY_CHARTS, start=1):
        by_second = series.latency.get(name, {})
        if not by_second:
            continue
        windows: dict[int, list[Mapping[int, int]]] = {}
        for second, histogram in by_second.items():
            start = second - second % LATENCY_WINDOW_SECONDS
            windows.setdefault(start, []).append(histogram)
        xs = sorted(windows)
        merged = [merge_histograms(windows[x]) for x in xs]
        for fraction, dash in ((0.5, "dot"), (0.95, "solid"), (0.99, "dash")):
            figure.add_trace(
                go.Scatter(
                    x=xs,
                    y=[percentile(h, fraction) for h in merged],
                    name=f"{name} p{round(fraction * 100)}",
                    line={"dash": dash},
                ),
                row=1,
                col=column,
            )
        figure.update_yaxes(title_text="ms from due", type="log", row=1, col=column)
        figure.update_xaxes(title_text="seconds since start", row=1, col=column)
    figure.update_layout(
        template="plotly_white", height=420, legend={"y": -0.3, "orientation": "h"}
    )
    return figure


def _time_in_queue_chart(waits: list[float]) -> go.Figure:
    figure = go.Figure(go.Histogram(x=waits, nbinsx=50, name="fans"))
    return _layout(figure, "seconds from join to admission", "fans")


def _fairness_chart(measures: RunMeasures) -> go.Figure:
    points = _thin(measures.admission_order)
    figure = go.Figure(
        go.Scattergl(
            x=[number for number, _ in points],
            y=[order for _, order in points],
            mode="markers",
            marker={"size": 4},
            name="admitted fans",
        )
    )
    return _layout(figure, "queue number", "admission order")


def _position_chart(measures: RunMeasures) -> go.Figure:
    points = _thin(measures.position_pairs)
    figure = go.Figure(
        go.Scattergl(
            x=[actual for _, actual in points],
            y=[shown for shown, _ in points],
            mode="markers",
            marker={"size": 4, "opacity": 0.5},
            name="polls",
        )
    )
    top = max((max(p) for p in points), default=1)
    figure.add_trace(
        go.Scatter(
            x=[0, top], y=[0, top], mode="lines", name="exact", line={"dash": "dot"}
        )
    )
    return _layout(figure, "actual people ahead", "people ahead shown")


def _outcomes_chart(outcomes: Mapping[str, int]) -> go.Figure:
    ordered = sorted(outcomes.items(), key=lambda item: -item[1])
    figure = go.Figure(
        go.Bar(x=[name for name, _ in ordered], y=[count for _, count in ordered])
    )
    return _layout(figure, "outcome", "fans")


def _thin(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(points) <= MAX_SCATTER_POINTS:
        return points
    return random.Random(0).sample(points, MAX_SCATTER_POINTS)
