"""Outgoing deploy notifications: a durable outbox and the sender that delivers it."""
