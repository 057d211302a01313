"""The M-of-N canary alert: fire once, resolve once, never flap."""

from __future__ import annotations

import pytest

from monitors.alerting import FIRING, RESOLVED, AlertState
from monitors.errors import InvalidMonitorConfigError


def feed(state: AlertState, verdicts: str) -> list[str | None]:
    """Record a run of verdicts ('P' passed, 'F' failed); return the transitions."""
    transitions = []
    for index, verdict in enumerate(verdicts):
        change = state.record(verdict == "P", now=float(index))
        transitions.append(change.status if change else None)
    return transitions


def test_fires_after_two_of_three() -> None:
    state = AlertState(alert_after=2, window=3)
    assert feed(state, "PFPF") == [None, None, None, FIRING]
    assert state.firing


def test_one_failure_does_not_fire() -> None:
    state = AlertState(alert_after=2, window=3)
    assert feed(state, "PFPPFPPF") == [None] * 8
    assert not state.firing


def test_notifies_once_on_entry_and_once_on_recovery() -> None:
    state = AlertState(alert_after=2, window=3)
    transitions = feed(state, "PPFFFFFFPPPP")
    assert transitions.count(FIRING) == 1
    assert transitions.count(RESOLVED) == 1
    assert transitions.index(FIRING) == 3
    # Two passes in a row leave one failure in the window of three.
    assert transitions.index(RESOLVED) == 9


def test_alternating_results_do_not_flap() -> None:
    state = AlertState(alert_after=2, window=3)
    transitions = feed(state, "FF" + "PF" * 10)
    assert transitions.count(FIRING) == 1
    assert transitions.count(RESOLVED) == 0
    assert state.firing


def test_transition_carries_times_and_counts() -> None:
    state = AlertState(alert_after=2, window=3)
    state.record(False, now=100.0)
    fired = state.record(False, now=160.0)
    assert fired is not None
    assert fired.started_at == 160.0
    assert fired.ended_at is None
    assert fired.failures == 2
    state.record(True, now=220.0)
    resolved = state.record(True, now=280.0)
    assert resolved is not None
    assert resolved.status == RESOLVED
    assert resolved.started_at == 160.0
    assert resolved.ended_at == 280.0


def test_recover_after_is_configurable() -> None:
    state = AlertState(alert_after=1, window=1, recover_after=3)
    assert feed(state, "FPPP") == [FIRING, None, None, RESOLVED]


@pytest.mark.parametrize(("alert_after", "window"), [(0, 3), (4, 3)])
def test_invalid_window_is_rejected(alert_after: int, window: int) -> None:
    with pytest.raises(InvalidMonitorConfigError):
        AlertState(alert_after=alert_after, window=window)
