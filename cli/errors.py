"""Errors the CLI reports itself (as opposed to gRPC errors from the control plane)."""


class UsageError(Exception):
    """A bad argument caught before any RPC; reported like argparse does, exit code 2."""
