"""The `serversinc` command-line client: a thin gRPC client of the control plane.

Everything here talks to the control plane only through the public API in protos/serversinc/v1,
so the CLI never depends on how the control plane stores or runs things.
"""
