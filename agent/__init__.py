"""Tugboat: the agent on each server, the only thing that touches its Docker engine and router."""

__version__ = "0.1.0"
