"""The pre-sale queue system: join, forward, assign windows, poll and buy."""
