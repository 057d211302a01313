"""The probe's verdict: which stage failed, why, and its JSON form."""

from __future__ import annotations

import json

from synthetic.result import (
    FAILED,
    PASSED,
    SKIPPED,
    TIMED_OUT,
    ProbeResult,
    StageResult,
)


def make_result(*stages: StageResult) -> ProbeResult:
    return ProbeResult(
        probe_id="p1",
        sale_id="canary",
        inject_at="join",
        started_at=0.0,
        stages=list(stages),
        duration_seconds=3.5,
    )


def test_healthy_summary_lists_stage_times() -> None:
    result = make_result(
        StageResult("join", PASSED, 0.1), StageResult("forward", PASSED, 1.2)
    )
    assert result.healthy
    assert result.failed_stage is None
    assert result.summary() == "healthy in 3.50 s (join 0.10 s, forward 1.20 s)"


def test_timed_out_stage_is_named_with_reason() -> None:
    result = make_result(
        StageResult("join", PASSED, 0.1),
        StageResult("forward", PASSED, 1.0),
        StageResult("admission", TIMED_OUT, 30.0, "no window admitted the fan"),
        StageResult("purchase", SKIPPED, 0.0, "not reached"),
    )
    assert not result.healthy
    assert result.failed_stage is not None
    assert result.failed_stage.stage == "admission"
    assert result.summary() == (
        "stage admission timed out after 30.0 s: no window admitted the fan"
    )


def test_cleanup_errors_make_the_probe_unhealthy() -> None:
    result = make_result(StageResult("join", PASSED, 0.1))
    result.cleanup_errors = ["could not delete fan item: throttled"]
    assert not result.healthy
    assert result.summary().startswith("stage cleanup failed")
    assert result.as_dict()["failed_stage"] == "cleanup"


def test_json_form_names_stage_and_reason() -> None:
    result = make_result(StageResult("join", FAILED, 0.2, "AccessDenied"))
    data = json.loads(json.dumps(result.as_dict()))
    assert data["healthy"] is False
    assert data["failed_stage"] == "join"
    assert "AccessDenied" in data["reason"]
    assert data["stages"][0]["outcome"] == "failed"
