"""What one probe found: each stage's outcome and time, and the verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The funnel stages a probe times, in order.
JOIN = "join"  # Cognito identity and the conditional join write
FORWARD = "forward"  # numbered by the forwarder
ADMISSION = "admission"  # admitted by a window, with a purchase URL
PURCHASE = "purchase"  # purchase validated by the ticketing service, dry run
STAGES = (JOIN, FORWARD, ADMISSION, PURCHASE)
# Not a funnel stage: removing what the probe wrote.
CLEANUP = "cleanup"

# Stage outcomes.
PASSED = "passed"
FAILED = "failed"
TIMED_OUT = "timed_out"
SKIPPED = "skipped"  # before the injection point, or after a failed stage


@dataclass
class StageResult:
    """One stage of one probe: outcome, duration and why it failed."""

    stage: str
    outcome: str = SKIPPED
    duration_seconds: float = 0.0
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED


@dataclass
class ProbeResult:
    """The verdict of one probe and the trace of its stages."""

    probe_id: str
    sale_id: str
    inject_at: str
    started_at: float  # epoch seconds
    fan_id: str | None = None
    stages: list[StageResult] = field(default_factory=list)
    duration_seconds: float = 0.0
    cleanup_errors: list[str] = field(default_factory=list)
    order_id: str | None = None

    @property
    def failed_stage(self) -> StageResult | None:
        """The first stage that failed or timed out, or ``None``."""
        for stage in self.stages:
            if stage.outcome in (FAILED, TIMED_OUT):
                return stage
        return None

    @property
    def healthy(self) -> bool:
        """Whether every stage that ran passed and the cleanup removed all."""
        return self.failed_stage is None and not self.cleanup_errors

    def stage(self, name: str) -> StageResult:
        """Return the result of the stage called ``name``."""
        for stage in self.stages:
            if stage.stage == name:
                return stage
        raise KeyError(name)

    def summary(self) -> str:
        """Return one line for a person: healthy, or which stage failed and why."""
        failed = self.failed_stage
        if failed is not None:
            verb = "timed out" if failed.outcome == TIMED_OUT else "failed"
            text = f"stage {failed.stage} {verb} after {failed.duration_seconds:.1f} s"
            return f"{text}: {failed.reason}"
        if self.cleanup_errors:
            return f"stage {CLEANUP} failed: {'; '.join(self.cleanup_errors)}"
        timings = ", ".join(
            f"{stage.stage} {stage.duration_seconds:.2f} s"
            for stage in self.stages
            if stage.passed
        )
        return f"healthy in {self.duration_seconds:.2f} s ({timings})"

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data for ``--json`` and logs."""
        data = asdict(self)
        failed = self.failed_stage
        data["healthy"] = self.healthy
        data["failed_stage"] = failed.stage if failed else None
        if failed is None and self.cleanup_errors:
            data["failed_stage"] = CLEANUP
        data["reason"] = "" if self.healthy else self.summary()
        return data
