"""Secrets at rest, API tokens and their checks."""
