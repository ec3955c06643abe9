"""Tugboat: the agent on each server, the only thing that touches its Docker engine and router."""
