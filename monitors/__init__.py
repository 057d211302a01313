"""Scheduled canary, funnel metrics and alerting."""
