"""Metrics and structured logs for operators."""
