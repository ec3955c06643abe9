"""Certificates as agents report them: the control plane's read model (no key material)."""
