"""How the control plane talks to Tugboat agents: a domain port and its gRPC adapter."""
