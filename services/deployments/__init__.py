"""Deployments: queueing, the event log, the deploy pipeline and its bookkeeping."""
