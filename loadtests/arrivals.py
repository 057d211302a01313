"""Open-model arrival schedules: when each fan arrives and how it behaves.

Fans arrive at a rate over time whatever the stack does; none of them waits
for another to finish. A schedule is built once from the plan's seed, so every
Locust process derives the same list and takes its own share of it.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from loadtests.plan import (
    ABANDONER,
    BOT,
    CSV,
    LATE,
    REFRESHER,
    SpikePlan,
)

# Published figures of the 2022 stadium-tour pre-sale (docs/spike.md has the
# sources): 1.5 million fans invited, about 40 % of invited fans show up, they
# buy 3 tickets on average, and the traffic would have filled almost 20 times
# the shows on sale.
TOUR_2022_INVITED = 1_500_000
TOUR_2022_SHOW_UP_RATIO = 0.40
TOUR_2022_MEAN_TICKETS = 3.0
TOUR_2022_DEMAND_OVER_STOCK = 20.0
# Scale for one machine: 3,750 invited fans (1 in 400), so 1,500 arrive. On
# the 2-core machine of docs/benchmarks.md the embedded stack takes the
# on-sale burst of this crowd within the default thresholds; twice as many
# fans push the join latency's 95th percentile to about 6 s.
TOUR_2022_DEFAULT_INVITED = 3_750
# Not published; assumptions of this profile (docs/spike.md says why).
TOUR_2022_PRESALE_SHARE = 0.5
TOUR_2022_PRESALE_SECONDS = 30.0
TOUR_2022_SPIKE_SECONDS = 10.0

# Abandoner variants: leave the line after some polls, or leave the purchase
# URL unopened once admitted.
LEAVE_WAITING = 0
NEVER_OPEN = 1
# Bot variants.
GUESS_URL = 0
REPLAY_TOKEN = 1


class Arrival(NamedTuple):
    """One fan of the schedule."""

    arrival_id: int  # position in the whole schedule, across workers
    offset_seconds: float  # from the start of the run
    behaviour: str
    tickets: int  # tickets this fan tries to buy
    variant: int  # abandoner or bot variant, or the poll a refresher reloads at
    leave_after_polls: int  # refreshers and abandoners act after this many polls


def tour_2022_fans(invited: int = TOUR_2022_DEFAULT_INVITED) -> int:
    """Return the fans who show up out of ``invited``, at the published 40 %."""
    return max(1, round(invited * TOUR_2022_SHOW_UP_RATIO))


def tour_2022_stock(fans: int, bot_share: float) -> int:
    """Return a stock that the fans' demand exceeds about twenty times over."""
    demand = fans * (1 - bot_share) * TOUR_2022_MEAN_TICKETS
    return max(1, round(demand / TOUR_2022_DEMAND_OVER_STOCK))


def ticket_weights(low: int, high: int, mean: float) -> list[float]:
    """Return probabilities for LOW..HIGH tickets per order with the given mean.

    The weights are exponentially tilted, p(k) proportional to exp(theta * k),
    with theta found by bisection, so a mean of 3 over 1..4 leans to 3 and 4.
    """
    counts = list(range(low, high + 1))
    if len(counts) == 1:
        return [1.0]

    def tilted(theta: float) -> list[float]:
        raw = [math.exp(theta * (k - low)) for k in counts]
        total = sum(raw)
        return [value / total for value in raw]

    lo, hi = -50.0, 50.0
    for _ in range(200):
        theta = (lo + hi) / 2
        weights = tilted(theta)
        if sum(k * w for k, w in zip(counts, weights, strict=True)) < mean:
            lo = theta
        else:
            hi = theta
    return tilted((lo + hi) / 2)


def build_schedule(plan: SpikePlan) -> list[Arrival]:
    """Return every fan's arrival, sorted by time, from the plan's seed."""
    rng = random.Random(plan.seed)
    offsets = _offsets(plan, rng)
    behaviours = list(plan.mix)
    weights = [plan.mix[name] for name in behaviours]
    counts = list(range(plan.tickets_low, plan.tickets_high + 1))
    ticket_probabilities = ticket_weights(
        plan.tickets_low, plan.tickets_high, plan.tickets_mean
    )
    late_start = plan.presale_seconds + plan.spike_seconds
    arrivals = []
    for index, offset in enumerate(offsets):
        behaviour = rng.choices(behaviours, weights)[0]
        if behaviour == LATE and plan.profile != CSV:
            offset = late_start + rng.uniform(0, plan.spike_seconds)
        tickets = rng.choices(counts, ticket_probabilities)[0]
        variant, polls = _variant(behaviour, rng)
        arrivals.append(Arrival(index, offset, behaviour, tickets, variant, polls))
    arrivals.sort(key=lambda arrival: (arrival.offset_seconds, arrival.arrival_id))
    return arrivals


def share(schedule: list[Arrival], worker: int, workers: int) -> list[Arrival]:
    """Return the arrivals that worker ``worker`` of ``workers`` runs."""
    return [arrival for arrival in schedule if arrival.arrival_id % workers == worker]


def arrivals_per_second(schedule: list[Arrival]) -> list[int]:
    """Return the number of arrivals in each whole second of the schedule."""
    if not schedule:
        return []
    counts = [0] * (int(max(a.offset_seconds for a in schedule)) + 1)
    for arrival in schedule:
        counts[int(arrival.offset_seconds)] += 1
    return counts


def _offsets(plan: SpikePlan, rng: random.Random) -> list[float]:
    if plan.profile == CSV:
        return [
            second + rng.random()
            for second, count in enumerate(plan.arrivals_per_second)
            for _ in range(count)
        ]
    presale = round(plan.fans * plan.presale_share) if plan.presale_seconds else 0
    spike = plan.fans - presale
    # Uniform times within each window are what a Poisson process gives once
    # the count is fixed.
    early = [rng.uniform(0, plan.presale_seconds) for _ in range(presale)]
    start = plan.presale_seconds
    main = [start + rng.uniform(0, plan.spike_seconds) for _ in range(spike)]
    return early + main


def _variant(behaviour: str, rng: random.Random) -> tuple[int, int]:
    if behaviour == REFRESHER:
        return 0, rng.randint(1, 3)
    if behaviour == ABANDONER:
        variant = rng.choice((LEAVE_WAITING, NEVER_OPEN))
        return variant, rng.randint(1, 4)
    if behaviour == BOT:
        return rng.choice((GUESS_URL, REPLAY_TOKEN)), 0
    return 0, 0
