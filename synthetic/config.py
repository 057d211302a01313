"""Settings of one probe: which sale, where to inject, and the deadlines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from synthetic.errors import InvalidProbeConfigError
from synthetic.result import ADMISSION, FORWARD, JOIN, PURCHASE, STAGES

# The canary's own sale: its line holds only synthetic fans, so a probe is
# not queued behind a real sale's crowd. Pass --sale-id to probe a real sale.
CANARY_SALE_ID = "canary"

# A healthy embedded stack passes each stage in about a second. The deadlines
# leave room for a busy AWS stack, and their total stays under the default
# monitor interval of 60 s, so a failing probe ends before the next one is
# due and no run is skipped.
DEFAULT_STAGE_DEADLINES_SECONDS: Mapping[str, float] = {
    JOIN: 10.0,
    FORWARD: 15.0,
    ADMISSION: 30.0,
    PURCHASE: 15.0,
}
DEFAULT_TOTAL_DEADLINE_SECONDS = 50.0
# How often the probe reads its fan's item while it waits for a stage.
DEFAULT_POLL_INTERVAL_SECONDS = 0.5
# Injection points: the first stage the synthetic message enters.
INJECTION_STAGES = (JOIN, FORWARD, ADMISSION)


@dataclass(frozen=True)
class ProbeConfig:
    """Which sale the probe joins, where it enters the funnel and its deadlines.

    ``inject_at`` is ``join`` (the browser's path), ``forward`` (the join item
    is written with the probe's own credentials, skipping Cognito) or
    ``admission`` (a numbered item and its message go straight into the work
    queue, skipping the join and the forwarder).
    """

    sale_id: str = CANARY_SALE_ID
    inject_at: str = JOIN
    stage_deadlines_seconds: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_STAGE_DEADLINES_SECONDS)
    )
    total_deadline_seconds: float = DEFAULT_TOTAL_DEADLINE_SECONDS
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS
    quantity: int = 1

    def __post_init__(self) -> None:
        if self.inject_at not in INJECTION_STAGES:
            raise InvalidProbeConfigError(
                f"Injection stage {self.inject_at!r} is unknown; choose one of "
                f"{', '.join(INJECTION_STAGES)}."
            )
        unknown = set(self.stage_deadlines_seconds) - set(STAGES)
        if unknown:
            raise InvalidProbeConfigError(
                f"Deadlines name unknown stages {sorted(unknown)}; the stages are "
                f"{', '.join(STAGES)}."
            )
        for stage in STAGES:
            _require_positive(f"the {stage} deadline", self.deadline_seconds(stage))
        _require_positive("the total deadline", self.total_deadline_seconds)
        _require_positive("the poll interval", self.poll_interval_seconds)
        if self.quantity < 1:
            raise InvalidProbeConfigError(
                f"Quantity {self.quantity!r} is invalid; buy at least 1 ticket."
            )

    def deadline_seconds(self, stage: str) -> float:
        """Return the deadline of ``stage``, the default when none is set."""
        value = self.stage_deadlines_seconds.get(stage)
        if value is None:
            return DEFAULT_STAGE_DEADLINES_SECONDS[stage]
        return float(value)


def _require_positive(what: str, value: float) -> None:
    if not value > 0:
        raise InvalidProbeConfigError(
            f"{what.capitalize()} is {value!r} s; it must be more than 0."
        )
