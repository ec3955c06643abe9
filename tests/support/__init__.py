"""Shared test helpers (sample git repositories) for agent and control-plane tests."""
