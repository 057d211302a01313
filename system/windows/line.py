"""The processor's in-memory view of one sale's line.

Everything here is a cache of the tables or a message held in flight: a
processor that restarts rebuilds it from DynamoDB and the work queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from system.windows.counters import AdmissionRate, Published
from system.windows.messages import WorkMessage
from system.windows.sales import Sale
from system.windows.store import Window, window_ids


@dataclass
class SaleLine:
    """One sale: its windows, the messages held for it and unpublished counts."""

    sale: Sale
    rate: AdmissionRate
    windows: dict[str, Window] = field(default_factory=dict)
    windows_loaded_at: float = -math.inf  # time.monotonic() seconds
    windows_created_for: int = 0  # the window count whose windows exist
    held: dict[str, WorkMessage] = field(default_factory=dict)  # by message id
    # numbered_at of the head of the line, 0 when the line was seen empty,
    # None before the processor has looked.
    head_numbered_at: float | None = None
    published_head: float | None = None
    admitted_delta: int = 0
    reclaimed_delta: int = 0
    serving: int = 0  # the highest queue number this process admitted
    published_at: float = -math.inf  # time.monotonic() seconds
    published_rate: float = 0.0
    dirty: bool = True
    sold_out_announced: bool = False

    @property
    def sale_id(self) -> str:
        return self.sale.sale_id

    def hold(self, message: WorkMessage) -> None:
        """Keep a received message; a redelivery replaces the stale copy."""
        self.held[message.message_id] = message

    def drop(self, message: WorkMessage) -> None:
        self.held.pop(message.message_id, None)

    def waiting_in_order(self) -> list[WorkMessage]:
        """Return the held messages in queue-number order."""
        return sorted(self.held.values(), key=lambda m: (m.queue_number, m.message_id))

    def free_window_ids(self) -> list[str]:
        """Return the free windows among the sale's current W, in id order."""
        return [
            window_id
            for window_id in window_ids(self.sale.config.window_count)
            if window_id in self.windows and not self.windows[window_id].busy
        ]

    def busy_windows(self) -> list[Window]:
        return [window for window in self.windows.values() if window.busy]

    def windows_in_use(self) -> int:
        return len(self.busy_windows())

    def current_head(self) -> float | None:
        """Return the head's numbered_at, from the held messages when any."""
        if self.held:
            self.head_numbered_at = min(m.numbered_at for m in self.held.values())
        return self.head_numbered_at

    def changed(self) -> bool:
        """Return whether something fans see changed since the last publish."""
        return self.dirty or self.current_head() != self.published_head

    def take_counts(self, admission_rate: float) -> Published:
        """Return what to publish now; the deltas restart from zero."""
        counts = Published(
            admitted_delta=self.admitted_delta,
            reclaimed_delta=self.reclaimed_delta,
            admission_rate=admission_rate,
            windows_in_use=self.windows_in_use(),
            head_numbered_at=self.current_head(),
        )
        self.admitted_delta = 0
        self.reclaimed_delta = 0
        self.published_head = counts.head_numbered_at
        self.published_rate = admission_rate
        return counts

    def restore_counts(self, counts: Published) -> None:
        """Put back deltas whose publish failed, to try again later."""
        self.admitted_delta += counts.admitted_delta
        self.reclaimed_delta += counts.reclaimed_delta
