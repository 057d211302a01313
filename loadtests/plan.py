"""The plan of one spike run: sale, crowd, behaviour mix, polling and targets.

The command line builds a ``SpikePlan``, writes it to ``plan.json`` in the
report folder, and every Locust process reads the same plan, so all workers
run the same crowd from the same seed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from loadtests.errors import SpikeConfigError

# Behaviours of the fans, as named in --mix.
PATIENT = "patient"  # waits, buys when admitted
REFRESHER = "refresher"  # reloads the page while waiting and must keep its place
SECOND_TAB = "second-tab"  # queues in two tabs of one browser, buys once
ABANDONER = "abandoner"  # leaves while waiting, or never opens its purchase URL
LATE = "late"  # arrives after the spike, at the back of the line
BOT = "bot"  # guesses purchase URLs or replays used tokens
BEHAVIOURS = (PATIENT, REFRESHER, SECOND_TAB, ABANDONER, LATE, BOT)
DEFAULT_MIX = {
    PATIENT: 60.0,
    REFRESHER: 10.0,
    SECOND_TAB: 5.0,
    ABANDONER: 10.0,
    LATE: 10.0,
    BOT: 5.0,
}

# Arrival profiles.
TOUR_2022 = "tour-2022"  # the default: scaled from a 2022 stadium-tour pre-sale
PRESALE = "presale"  # a pre-sale crowd, then N fans within S seconds
CSV = "csv"  # replay of arrivals per second from a CSV file
PROFILES = (TOUR_2022, PRESALE, CSV)


@dataclass(frozen=True)
class Targets:
    """Where the fans send their requests; read from the stack's outputs."""

    region: str
    identity_pool_id: str
    queue_table: str
    sales_table: str
    endpoint_url: str | None = None  # None: the public AWS endpoints
    ticketing_url: str | None = None  # for bots and preflight; fans follow URLs


@dataclass(frozen=True)
class SpikePlan:
    """Everything a Locust process needs to run its share of the crowd."""

    sale_id: str
    targets: Targets
    profile: str = PRESALE
    fans: int = 1000  # fans who arrive, in all, bots included
    presale_share: float = 0.3  # share of them waiting before the on-sale second
    presale_seconds: float = 30.0  # length of the pre-sale window
    spike_seconds: float = 10.0  # the others arrive within this after on-sale
    arrivals_per_second: tuple[int, ...] = ()  # the CSV profile's counts
    stock: int = 500
    windows: int = 20
    session_seconds: float = 60.0
    claim_timeout_seconds: float = 10.0
    max_tickets_per_order: int = 4
    tickets_low: int = 1
    tickets_high: int = 4
    tickets_mean: float = 3.0
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    poll_min_seconds: float = 2.0
    poll_max_seconds: float = 60.0
    fixed_poll_seconds: float | None = None  # a fixed poll, for comparison only
    checkout_seconds: float = 2.0  # a fan's time on the purchase page
    duration_cap_seconds: float = 300.0
    seed: int = 1
    start_at: float = 0.0  # epoch seconds of offset 0; 0 means "at test start"
    connections: int = 40  # pooled connections per origin and Locust process

    def __post_init__(self) -> None:
        _check_plan(self)

    @property
    def on_sale_offset_seconds(self) -> float:
        """Seconds from the start of the run to the on-sale second."""
        return self.presale_seconds

    @property
    def arrival_seconds(self) -> float:
        """Seconds from the start until the last fan is due to arrive."""
        if self.profile == CSV:
            return float(len(self.arrivals_per_second))
        late_window = self.spike_seconds if self.mix.get(LATE, 0) > 0 else 0.0
        return self.presale_seconds + self.spike_seconds + late_window

    @property
    def tickets_demanded(self) -> float:
        """Tickets the non-bot fans would buy if stock were endless."""
        buyers = self.fans * (1 - self.mix_share(BOT) - self.mix_share(ABANDONER))
        return buyers * self.tickets_mean

    def mix_share(self, behaviour: str) -> float:
        """Return the share (0..1) of fans with ``behaviour``."""
        total = sum(self.mix.values())
        return self.mix.get(behaviour, 0.0) / total if total else 0.0

    def expected_seconds(self) -> float:
        """Estimate how long the run takes: arrivals, then selling the stock.

        An estimate for the progress display: admitting and serving one fan
        is taken as two minimum polls plus the checkout time, W at a time.
        """
        orders = min(self.stock / self.tickets_mean, self.tickets_demanded)
        per_fan = 2 * self.poll_min_seconds + self.checkout_seconds + 1.0
        selling = self.on_sale_offset_seconds + orders * per_fan / self.windows
        told = max(self.arrival_seconds, selling) + self.poll_max_seconds / 2
        return min(told, self.duration_cap_seconds)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SpikePlan:
        data = json.loads(text)
        data["targets"] = Targets(**data["targets"])
        data["arrivals_per_second"] = tuple(data.get("arrivals_per_second", ()))
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SpikeConfigError(
                f"The spike plan has unknown fields {sorted(unknown)}; write it "
                "with the same version of boxoffice."
            )
        return cls(**data)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json())

    @classmethod
    def read(cls, path: Path) -> SpikePlan:
        return cls.from_json(path.read_text())

    def with_start(self, start_at: float) -> SpikePlan:
        return replace(self, start_at=start_at)


def parse_mix(text: str) -> dict[str, float]:
    """Parse ``patient=60,bot=5,...`` into weights; missing behaviours get 0."""
    mix = dict.fromkeys(BEHAVIOURS, 0.0)
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name not in mix:
            raise SpikeConfigError(
                f"Mix entry {part.strip()!r} is invalid: write NAME=WEIGHT with "
                f"NAME one of {', '.join(BEHAVIOURS)}."
            )
        try:
            weight = float(value)
        except ValueError as exc:
            raise SpikeConfigError(
                f"Mix weight {value!r} of {name!r} is not a number."
            ) from exc
        if weight < 0 or not math.isfinite(weight):
            raise SpikeConfigError(
                f"Mix weight of {name!r} is {weight}; use 0 or more."
            )
        mix[name] = weight
    if sum(mix.values()) <= 0:
        raise SpikeConfigError("The behaviour mix has no positive weight.")
    return mix


def format_mix(mix: dict[str, float]) -> str:
    """Return the mix as ``NAME=WEIGHT`` pairs, the format ``parse_mix`` reads."""
    return ",".join(f"{name}={weight:g}" for name, weight in mix.items())


def parse_ticket_range(text: str) -> tuple[int, int]:
    """Parse ``LOW-HIGH`` (or one number) into a range of tickets per order."""
    low_text, _, high_text = text.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if high_text else low
    except ValueError as exc:
        raise SpikeConfigError(
            f"Tickets per order {text!r} is invalid: write LOW-HIGH, such as 1-4."
        ) from exc
    if not 1 <= low <= high:
        raise SpikeConfigError(
            f"Tickets per order {text!r} is invalid: need 1 <= LOW <= HIGH."
        )
    return low, high


def read_arrivals_csv(path: Path) -> tuple[int, ...]:
    """Read a CSV of ``second,fans`` rows into fans per second from second 0.

    A header row is allowed. Seconds may be left out (no arrivals) but must
    not repeat; they are whole seconds from the start of the run.
    """
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SpikeConfigError(
            f"Cannot read arrivals file {str(path)!r}: {exc}"
        ) from exc
    counts: dict[int, int] = {}
    for number, line in enumerate(lines, start=1):
        cells = [cell.strip() for cell in line.split(",")]
        if not line.strip() or (number == 1 and not cells[0].lstrip("-").isdigit()):
            continue  # blank line or header
        try:
            second, fans = int(cells[0]), int(cells[1])
        except (ValueError, IndexError) as exc:
            raise SpikeConfigError(
                f"{path}:{number}: expected 'second,fans' with whole numbers, got "
                f"{line!r}."
            ) from exc
        if second < 0 or fans < 0 or second in counts:
            raise SpikeConfigError(
                f"{path}:{number}: second {second} is negative or repeated, or "
                f"fans {fans} is negative."
            )
        counts[second] = fans
    if not counts or sum(counts.values()) == 0:
        raise SpikeConfigError(f"Arrivals file {str(path)!r} has no arrivals.")
    return tuple(counts.get(second, 0) for second in range(max(counts) + 1))


def _check_plan(plan: SpikePlan) -> None:
    checks: list[tuple[bool, str]] = [
        (
            plan.profile in PROFILES,
            f"profile {plan.profile!r} is not one of {PROFILES}",
        ),
        (plan.fans >= 1, f"fans is {plan.fans}; use at least 1"),
        (
            0 <= plan.presale_share < 1,
            f"presale share is {plan.presale_share}; use 0..1",
        ),
        (plan.presale_seconds >= 0, "presale seconds must not be negative"),
        (plan.spike_seconds > 0, "spike seconds must be positive"),
        (plan.stock >= 0, f"stock is {plan.stock}; use 0 or more"),
        (plan.windows >= 1, f"windows is {plan.windows}; use at least 1"),
        (
            plan.tickets_low <= plan.tickets_mean <= plan.tickets_high,
            f"mean tickets {plan.tickets_mean} is outside "
            f"{plan.tickets_low}-{plan.tickets_high}",
        ),
        (
            plan.tickets_high <= plan.max_tickets_per_order,
            f"tickets per order up to {plan.tickets_high} exceeds the sale's "
            f"maximum of {plan.max_tickets_per_order}",
        ),
        (
            0 < plan.poll_min_seconds <= plan.poll_max_seconds,
            f"poll bounds {plan.poll_min_seconds}..{plan.poll_max_seconds} s are "
            "invalid; need 0 < minimum <= maximum",
        ),
        (
            plan.fixed_poll_seconds is None or plan.fixed_poll_seconds > 0,
            "a fixed poll interval must be positive",
        ),
        (plan.checkout_seconds >= 0, "checkout seconds must not be negative"),
        (plan.connections >= 1, "connections must be at least 1"),
        (
            plan.claim_timeout_seconds <= plan.session_seconds,
            "the claim timeout must not exceed the session length",
        ),
        (
            plan.profile != CSV or len(plan.arrivals_per_second) > 0,
            "the csv profile needs arrivals per second (--arrivals-csv)",
        ),
    ]
    for ok, problem in checks:
        if not ok:
            raise SpikeConfigError(f"Invalid spike plan: {problem}.")
    if plan.duration_cap_seconds <= plan.arrival_seconds:
        raise SpikeConfigError(
            f"The duration cap ({plan.duration_cap_seconds:g} s) ends before the "
            f"last fan arrives ({plan.arrival_seconds:g} s); raise "
            "--duration-cap-seconds or shorten the arrival profile."
        )
    if set(plan.mix) - set(BEHAVIOURS) or sum(plan.mix.values()) <= 0:
        raise SpikeConfigError(
            f"Invalid behaviour mix {plan.mix!r}: use weights of {BEHAVIOURS}."
        )
