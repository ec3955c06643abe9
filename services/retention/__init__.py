"""Retention on the control plane's side: server prunes, rollbacks past retention, event retention."""
