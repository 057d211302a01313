"""The ``boxoffice spike`` subcommand: options and the plan they make."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from loadtests.arrivals import TOUR_2022_DEFAULT_INVITED
from loadtests.plan import (
    DEFAULT_MIX,
    PRESALE,
    PROFILES,
    TOUR_2022,
    SpikePlan,
    Targets,
    format_mix,
    parse_mix,
    parse_ticket_range,
    read_arrivals_csv,
)
from system.aws_options import add_target_options

DEFAULT_REPORTS = Path("reports")
DEFAULT_DURATION_CAP_SECONDS = 600.0
DEFAULT_PRESALE_FANS = 1000
DEFAULT_PRESALE_STOCK = 500
DEFAULT_PRESALE_SHARE = 0.3


def register(subparsers: Any) -> None:
    """Add ``spike`` to the ``boxoffice`` parser."""
    parser = subparsers.add_parser(
        "spike",
        help="run an on-sale spike simulation with Locust and report on it",
        description="Send a crowd of simulated fans at the queue the way their "
        "browsers would, measure what the queue does to them, check the "
        "thresholds and write a report folder. Without --stack it uses the "
        "embedded stack, starting it if none is up and stopping it afterwards. "
        "Exit status: 0 all thresholds met, 1 a threshold failed, 2 an error "
        "before the run, 3 the load generator was unhealthy (run invalid).",
    )
    add_target_options(parser)
    parser.add_argument(
        "--ticketing-url",
        help="URL of the ticketing service of a deployed stack, for the "
        "preflight check and for bots (env: BOXOFFICE_TICKETING_URL)",
    )
    _add_crowd_options(parser)
    _add_sale_options(parser)
    _add_fan_options(parser)
    _add_run_options(parser)
    parser.set_defaults(handler=run_spike)


def run_spike(args: argparse.Namespace) -> int:
    from loadtests.spike import run

    return run(args)


def plan_from_args(
    args: argparse.Namespace, targets: Targets, start_at: float
) -> SpikePlan:
    """Build the run's plan from the options; defaults depend on the profile."""
    from loadtests.arrivals import (
        TOUR_2022_PRESALE_SECONDS,
        TOUR_2022_PRESALE_SHARE,
        TOUR_2022_SPIKE_SECONDS,
        tour_2022_fans,
        tour_2022_stock,
    )

    mix = parse_mix(args.mix)
    low, high = parse_ticket_range(args.tickets_per_order)
    arrivals: tuple[int, ...] = ()
    if args.arrival_profile == TOUR_2022:
        fans = tour_2022_fans(args.invited) if args.fans is None else args.fans
        share = _given(args.presale_share, TOUR_2022_PRESALE_SHARE)
        presale_seconds = _given(args.presale_seconds, TOUR_2022_PRESALE_SECONDS)
        spike_seconds = _given(args.spike_seconds, TOUR_2022_SPIKE_SECONDS)
        total = sum(mix.values())
        stock = (
            args.stock
            if args.stock is not None
            else tour_2022_stock(fans, mix.get("bot", 0.0) / total)
        )
    else:
        fans = DEFAULT_PRESALE_FANS if args.fans is None else args.fans
        share = _given(args.presale_share, DEFAULT_PRESALE_SHARE)
        presale_seconds = _given(args.presale_seconds, TOUR_2022_PRESALE_SECONDS)
        spike_seconds = _given(args.spike_seconds, TOUR_2022_SPIKE_SECONDS)
        stock = args.stock if args.stock is not None else DEFAULT_PRESALE_STOCK
        if args.arrival_profile != PRESALE:  # csv
            if args.arrivals_csv is None:
                from loadtests.errors import SpikeConfigError

                raise SpikeConfigError(
                    "The csv profile needs --arrivals-csv FILE with rows 'second,fans'."
                )
            arrivals = read_arrivals_csv(Path(args.arrivals_csv))
            fans = sum(arrivals)
    return SpikePlan(
        sale_id=args.sale_id or time.strftime("spike-%Y%m%d-%H%M%S", time.gmtime()),
        targets=targets,
        profile=args.arrival_profile,
        fans=fans,
        presale_share=share,
        presale_seconds=presale_seconds,
        spike_seconds=spike_seconds,
        arrivals_per_second=arrivals,
        stock=stock,
        windows=args.windows,
        session_seconds=args.session_seconds,
        claim_timeout_seconds=args.claim_timeout_seconds,
        max_tickets_per_order=max(high, args.max_tickets_per_order),
        tickets_low=low,
        tickets_high=high,
        tickets_mean=args.mean_tickets,
        mix=mix,
        poll_min_seconds=args.poll_min_seconds,
        poll_max_seconds=args.poll_max_seconds,
        fixed_poll_seconds=args.fixed_poll_seconds,
        checkout_seconds=args.checkout_seconds,
        duration_cap_seconds=args.duration_cap_seconds,
        seed=args.seed,
        start_at=start_at,
        connections=args.connections,
    )


def _given(value: float | None, default: float) -> float:
    return default if value is None else value


def _add_crowd_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("crowd and arrivals")
    group.add_argument(
        "--arrivals",
        dest="arrival_profile",
        choices=PROFILES,
        default=TOUR_2022,
        help="arrival profile (default: %(default)s): tour-2022 is scaled from "
        "the published figures of a 2022 stadium-tour pre-sale (docs/spike.md); "
        "presale is a crowd before the on-sale second, then the rest within "
        "--spike-seconds; csv replays --arrivals-csv",
    )
    group.add_argument(
        "--fans",
        type=int,
        metavar="N",
        help="fans who arrive in all, bots included (tour-2022: 40 %% of "
        f"--invited; presale: {DEFAULT_PRESALE_FANS})",
    )
    group.add_argument(
        "--invited",
        type=int,
        default=TOUR_2022_DEFAULT_INVITED,
        metavar="N",
        help="tour-2022 only: fans invited to the pre-sale, of whom 40 %% show up "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--presale-share",
        type=float,
        metavar="RATIO",
        help="share of the fans (0 to 1) who wait before the on-sale second "
        f"(tour-2022: 0.5; presale: {DEFAULT_PRESALE_SHARE})",
    )
    group.add_argument(
        "--presale-seconds",
        type=float,
        metavar="SECONDS",
        help="length of the pre-sale window before the on-sale second, in "
        "seconds; with csv, the second of the CSV that is the on-sale (default: 30)",
    )
    group.add_argument(
        "--spike-seconds",
        type=float,
        metavar="SECONDS",
        help="the fans after the pre-sale crowd arrive within this many seconds "
        "of the on-sale; late arrivals come in the same length after (default: 10)",
    )
    group.add_argument(
        "--arrivals-csv",
        metavar="FILE",
        help="csv profile: rows 'second,fans' giving arrivals per second",
    )
    group.add_argument(
        "--mix",
        default=format_mix(DEFAULT_MIX),
        metavar="NAME=WEIGHT,...",
        help="behaviour mix by weight: patient, refresher (reloads while "
        "waiting), second-tab, abandoner (leaves the line or never opens its "
        "URL), late (arrives after the spike), bot (guesses or replays URLs) "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=1,
        help="random seed, for repeatable runs (default: %(default)s)",
    )


def _add_sale_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sale")
    group.add_argument(
        "--sale-id", help="sale to create for the run (default: spike-<UTC time>)"
    )
    group.add_argument(
        "--stock",
        type=int,
        metavar="TICKETS",
        help="tickets on sale (tour-2022: the fans' demand / 20; presale: "
        f"{DEFAULT_PRESALE_STOCK})",
    )
    group.add_argument(
        "--windows",
        type=int,
        default=20,
        metavar="W",
        help="ticket-issuing windows serving fans at once (default: %(default)s)",
    )
    group.add_argument(
        "--session-seconds",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long an admitted fan may hold a window, in seconds "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--claim-timeout-seconds",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long an admitted fan has to open its purchase URL before "
        "the window is reclaimed, in seconds (default: %(default)s)",
    )
    group.add_argument(
        "--tickets-per-order",
        default="1-4",
        metavar="LOW-HIGH",
        help="range of tickets one fan buys (default: %(default)s)",
    )
    group.add_argument(
        "--mean-tickets",
        type=float,
        default=3.0,
        metavar="TICKETS",
        help="average tickets per order within the range (default: %(default)s)",
    )
    group.add_argument(
        "--max-tickets-per-order",
        type=int,
        default=4,
        metavar="TICKETS",
        help="the sale's limit of tickets per order (default: %(default)s)",
    )


def _add_fan_options(parser: argparse.ArgumentParser) -> None:
    from system.position import MAX_POLL_SECONDS, MIN_POLL_SECONDS

    group = parser.add_argument_group("fans")
    group.add_argument(
        "--poll-min-seconds",
        type=float,
        default=MIN_POLL_SECONDS,
        metavar="SECONDS",
        help="minimum interval between a waiting fan's polls, in seconds "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--poll-max-seconds",
        type=float,
        default=MAX_POLL_SECONDS,
        metavar="SECONDS",
        help="maximum interval between a waiting fan's polls, in seconds "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--fixed-poll-seconds",
        type=float,
        metavar="SECONDS",
        help="poll at this fixed interval instead of adaptively (for comparison)",
    )
    group.add_argument(
        "--checkout-seconds",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="average seconds a fan spends on the purchase page before buying "
        "(default: %(default)s)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument(
        "--duration-cap-seconds",
        type=float,
        default=DEFAULT_DURATION_CAP_SECONDS,
        metavar="SECONDS",
        help="the run stops by itself this many seconds after its start "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="run a Locust master and N local worker processes, all bound to "
        "127.0.0.1 (default: %(default)s, one process)",
    )
    group.add_argument(
        "--connections",
        type=int,
        default=40,
        metavar="N",
        help="pooled connections per endpoint in each Locust process "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve the run's figures to Prometheus on 127.0.0.1:PORT from the "
        "Locust master, then the threshold verdicts once Locust has exited; "
        "each waits up to 15 s for a last scrape (dashboards/prometheus.yml "
        "scrapes 9646; default: no metrics)",
    )
    group.add_argument(
        "--report-dir",
        metavar="DIR",
        help="folder for the report (default: reports/spike-<UTC time>)",
    )
    group.add_argument(
        "--thresholds",
        metavar="FILE",
        help="YAML file of thresholds (default: loadtests/thresholds.yaml)",
    )
    group.add_argument(
        "--write-plan",
        action="store_true",
        help="create the sale and write plan.json for a hand-run Locust, then stop",
    )
