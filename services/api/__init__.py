"""The control plane's gRPC API: servicers that translate messages to domain calls, and the server."""
