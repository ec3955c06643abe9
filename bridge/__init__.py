"""The GitHub webhook bridge: turns a verified GitHub `push` into a control-plane deployment.

It only enqueues (GitHub gives a delivery 10 s); the control plane's workers do the deploying.
Layout: `signature` and `matching` and `handler` are pure domain logic (no HTTP, no gRPC);
`client` is the gRPC adapter with its short-lived caches; `app` is the Starlette HTTP edge;
`main` is the `serversinc-webhook` entry point.
"""
