"""Locust spike simulations of an on-sale and their Prometheus exporter."""
