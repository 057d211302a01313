"""One spike run, end to end: target, preflight, Locust, truth, measures, report."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from loadtests import outputs, report, thresholds
from loadtests.commands import DEFAULT_REPORTS, plan_from_args
from loadtests.errors import LoadGeneratorError
from loadtests.live import print_summary, watch
from loadtests.measures import RunMeasures, generator_health, measure
from loadtests.plan import SpikePlan, Targets
from loadtests.processes import LocustProcesses
from loadtests.series import Series
from loadtests.target import Target, open_target, preflight
from loadtests.threshold_metrics import serve_thresholds
from loadtests.truth import StackTruth, read_truth
from system import provision, schema
from system.clients import make_session
from system.sale import SaleConfig

logger = logging.getLogger(__name__)

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_INVALID = 3
# Fans start arriving this long after the plan is written, so Locust and its
# workers are up by then (they take about two seconds on a 2-core machine).
START_LEAD_SECONDS = 6.0
# With --write-plan, Locust is started by hand, on several machines.
WRITE_PLAN_LEAD_SECONDS = 120.0
# Locust's own time limit, past the plan's cap: the drain of the last steps
# plus reporting. It only matters if the crowd fails to stop by itself.
LOCUST_GRACE_SECONDS = 60.0
# How long the verdicts wait on --metrics-port for Prometheus to read them.
THRESHOLD_SCRAPE_TIMEOUT_SECONDS = 15.0


@dataclass
class Outcome:
    """The result of a finished run."""

    plan: SpikePlan
    measures: RunMeasures
    verdicts: list[thresholds.Verdict]
    verdict: str  # passed, failed or invalid
    exit_code: int
    folder: Path


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    """Run the spike the options describe and return the exit status."""
    # Without a terminal (CI logs) rich would wrap at 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    limits = thresholds.load(Path(args.thresholds) if args.thresholds else None)
    # Check the options before starting anything.
    plan_from_args(args, _placeholder_targets(), time.time())
    folder = _report_folder(args.report_dir)
    target = open_target(args, lambda message: console.print(f"... {message}"))
    try:
        for warning in preflight(target):
            console.print(f"[yellow]warning:[/yellow] {warning}")
        lead = WRITE_PLAN_LEAD_SECONDS if args.write_plan else START_LEAD_SECONDS
        plan = plan_from_args(args, target.targets(), time.time() + lead)
        _configure_sale(target, plan)
        plan.write(folder / outputs.PLAN_FILE)
        if args.write_plan:
            starts = time.strftime("%H:%M:%S UTC", time.gmtime(plan.start_at))
            console.print(
                f"Wrote {folder / outputs.PLAN_FILE} for sale {plan.sale_id}. "
                f"Fans start arriving at {starts}: start Locust before then."
            )
            return EXIT_PASSED
        console.print(
            f"Spike on {target.description}: {plan.fans:,} fans ({plan.profile}), "
            f"sale {plan.sale_id} with {plan.stock:,} tickets and {plan.windows} "
            f"windows; report in {folder}"
        )
        outcome = execute(
            plan,
            target,
            folder,
            limits,
            args.workers,
            console,
            metrics_port=args.metrics_port,
        )
    finally:
        stopped = target.close()
        if stopped:
            console.print("... Stopped " + ", ".join(stopped))
    return outcome.exit_code


def execute(
    plan: SpikePlan,
    target: Target,
    folder: Path,
    limits: list[thresholds.Threshold],
    workers: int,
    console: Console,
    *,
    metrics_port: int | None = None,
) -> Outcome:
    """Run Locust on the written plan, then judge and report the run."""
    processes = LocustProcesses(folder, workers, metrics_port)
    run_time = START_LEAD_SECONDS + plan.duration_cap_seconds + LOCUST_GRACE_SECONDS
    processes.start(folder / outputs.PLAN_FILE, run_time)
    try:
        watch(processes, folder, plan.stock, run_time + 30, console)
    finally:
        processes.stop()
    ended = time.time()
    truth = read_truth(target.settings, target.resources, plan.sale_id)
    outputs.write_json(folder / outputs.TRUTH_FILE, truth.to_json())
    close_sale(target, plan.sale_id)
    outcome = judge(plan, folder, truth, limits, ended, target.description, console)
    if metrics_port is not None:
        judged = {
            str(verdict.threshold): verdict.passed
            for verdict in outcome.verdicts
            if verdict.passed is not None
        }
        serve_thresholds(
            judged, metrics_port, timeout_seconds=THRESHOLD_SCRAPE_TIMEOUT_SECONDS
        )
    return outcome


def judge(
    plan: SpikePlan,
    folder: Path,
    truth: StackTruth,
    limits: list[thresholds.Threshold],
    ended: float,
    target: str,
    console: Console,
) -> Outcome:
    """Compute the measures, check the thresholds, write the report and summary."""
    generator = _generator(folder)
    records = outputs.read_fans(folder)
    positions = _optional_json(folder / outputs.POSITIONS_FILE, [])
    series = Series.from_json(_optional_json(folder / outputs.SERIES_FILE, {}))
    measures = measure(plan, records, positions, truth, generator, ended)
    measures.values.update(generator_health(generator))
    verdicts = thresholds.evaluate(limits, measures.values)
    invalid = [
        v for v in verdicts if v.threshold.section == thresholds.GENERATOR and v.failed
    ]
    failed = [
        v for v in verdicts if v.threshold.section == thresholds.STACK and v.failed
    ]
    if invalid:
        verdict, code = "invalid", EXIT_INVALID
        headline = (
            "INVALID RUN: the load generator was unhealthy ("
            + ", ".join(v.threshold.measure for v in invalid)
            + "), so the stack's results do not count."
        )
    elif failed:
        verdict, code = "failed", EXIT_FAILED
        headline = f"FAILED: {len(failed)} threshold(s) not met."
    else:
        verdict, code = "passed", EXIT_PASSED
        headline = "PASSED: every threshold met."
    values = measures.values
    summary: dict[str, Any] = {
        "verdict": verdict,
        "headline": headline,
        "target": target,
        "exit_code": code,
        "facts": {
            "fans": report.format_value(values.get("fans_arrived")),
            "admitted": report.format_value(values.get("fans_admitted")),
            "sold": report.format_value(values.get("tickets_sold")),
            "stock": report.format_value(values.get("stock")),
            "lost": report.format_value(values.get("lost_fans")),
        },
        "measures": values,
        "outcomes": measures.outcomes,
        "thresholds": [
            {
                "section": v.threshold.section,
                "measure": v.threshold.measure,
                "limit": f"{v.threshold.operator} {v.threshold.limit:g}",
                "value": v.value,
                "passed": v.passed,
            }
            for v in verdicts
        ],
    }
    outputs.write_json(folder / outputs.SUMMARY_FILE, summary)
    html = report.render(plan, measures, series, verdicts, summary)
    report.write(folder / outputs.REPORT_FILE, html)
    print_summary(console, headline, verdict, values, verdicts, folder)
    return Outcome(plan, measures, verdicts, verdict, code, folder)


def _generator(folder: Path) -> dict[str, Any]:
    path = folder / outputs.GENERATOR_FILE
    if not path.exists():
        # Locust ended without the crowd's results: the workers died or the
        # time limit cut them off. The run is invalid, not the stack's fault.
        logger.error("Locust wrote no %s; see the locust-*.log files", path.name)
        return {"workers_expected": 1, "workers_done": 0, "workers": []}
    data: dict[str, Any] = outputs.read_json(path)
    return data


def _optional_json(path: Path, default: Any) -> Any:
    return outputs.read_json(path) if path.exists() else default


def _report_folder(given: str | None) -> Path:
    folder = (
        Path(given)
        if given
        else DEFAULT_REPORTS / time.strftime("spike-%Y%m%d-%H%M%S", time.gmtime())
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoadGeneratorError(
            f"Cannot create the report folder {str(folder)!r}: {exc}"
        ) from exc
    return folder.resolve()


def _configure_sale(target: Target, plan: SpikePlan) -> None:
    config = SaleConfig(
        sale_id=plan.sale_id,
        stock=plan.stock,
        window_count=plan.windows,
        session_seconds=plan.session_seconds,
        claim_timeout_seconds=plan.claim_timeout_seconds,
        on_sale_at=plan.start_at + plan.on_sale_offset_seconds,
        max_tickets_per_order=plan.max_tickets_per_order,
    )
    provision.configure_sale(target.settings, target.resources, config)


def close_sale(target: Target, sale_id: str) -> None:
    """Mark the run's sale sold out, so the window processor stops serving it.

    A run cut short by its duration cap leaves fans in line. On a stack that
    stays up, they would otherwise keep windows and work messages busy.
    """
    table = (
        make_session(target.settings)
        .resource("dynamodb", endpoint_url=target.settings.endpoint_url)
        .Table(target.resources.sales_table)
    )
    table.update_item(
        Key={schema.SALE_ID: sale_id},
        UpdateExpression="SET #flag = :true",
        ExpressionAttributeNames={"#flag": schema.SOLD_OUT_FLAG},
        ExpressionAttributeValues={":true": True},
    )
    logger.info("Closed sale %s", sale_id)


def _placeholder_targets() -> Targets:
    return Targets(
        region="us-east-1",
        identity_pool_id="unknown",
        queue_table="unknown",
        sales_table="unknown",
    )
