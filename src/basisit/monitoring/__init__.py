"""Monitoring: what Prometheus scrapes, derived from the stack outputs (contract 2)."""
