"""What the control plane and the Tugboat agent must agree on, written once: input rules, the
phase vocabulary, defaults and small helpers both sides use. Imports nothing of either side,
nor gRPC, nor Docker."""
