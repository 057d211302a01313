"""The canary alert: fire after M of the last N probes failed, resolve once.

The alert changes state only on a transition, so a receiver hears once when
it fires and once when it resolves. It resolves only after enough probes in
a row passed that the window can no longer hold M failures, so a canary
that fails every other probe stays firing instead of flapping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from monitors.errors import InvalidMonitorConfigError

DEFAULT_ALERT_AFTER = 2  # M: failed probes that fire the alert...
DEFAULT_ALERT_WINDOW = 3  # N: ...among this many of the latest probes

FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True)
class Transition:
    """The alert started firing or resolved, and the counts at that moment."""

    status: str  # FIRING or RESOLVED
    started_at: float  # epoch seconds the alert started firing
    ended_at: float | None  # epoch seconds it resolved; None while firing
    failures: int  # failed probes in the window
    window: int  # probes in the window


class AlertState:
    """Count failed probes in a sliding window and report state changes.

    ``recover_after`` is how many probes in a row must pass to resolve. Its
    default, N - M + 1, is the fewest that leave fewer than M failures in
    the window.
    """

    def __init__(
        self,
        alert_after: int = DEFAULT_ALERT_AFTER,
        window: int = DEFAULT_ALERT_WINDOW,
        recover_after: int | None = None,
    ) -> None:
        if not 1 <= alert_after <= window:
            raise InvalidMonitorConfigError(
                f"Alert after {alert_after} of {window} probes is invalid; M must "
                "be at least 1 and at most N."
            )
        self.alert_after = alert_after
        self.window = window
        self.recover_after = recover_after or window - alert_after + 1
        if self.recover_after < 1:
            raise InvalidMonitorConfigError(
                f"Recover after {self.recover_after} passed probes is invalid; use "
                "at least 1."
            )
        self._results: deque[bool] = deque(maxlen=window)
        self._passed_in_a_row = 0
        self._firing_since: float | None = None
        self._lock = threading.Lock()

    @property
    def firing(self) -> bool:
        return self._firing_since is not None

    @property
    def failures(self) -> int:
        """Failed probes among the latest N."""
        return sum(1 for healthy in self._results if not healthy)

    def record(self, healthy: bool, now: float | None = None) -> Transition | None:
        """Add one probe's verdict; return the transition it caused, if any."""
        now = time.time() if now is None else now
        with self._lock:
            self._results.append(healthy)
            self._passed_in_a_row = self._passed_in_a_row + 1 if healthy else 0
            failures = self.failures
            if self._firing_since is None and failures >= self.alert_after:
                self._firing_since = now
                return Transition(FIRING, now, None, failures, len(self._results))
            started = self._firing_since
            if started is not None and self._passed_in_a_row >= self.recover_after:
                self._firing_since = None
                return Transition(RESOLVED, started, now, failures, len(self._results))
            return None
