"""Benchmarks of the queue system on the embedded stack."""
