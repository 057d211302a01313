"""Benchmarks of the spike simulation (run by hand, not in CI)."""
