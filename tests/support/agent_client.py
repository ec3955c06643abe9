"""Channels to a Tugboat agent as the control plane makes them: mutual TLS and the agent secret.

`agent_channel(address, certs_dir=..., secret=...)` uses the control plane's pair from a certs
folder (scripts/certs.py layout); `ca` / `cert` / `key` bytes override it (throwaway, expired or
foreign certificates in the trust tests); `certs_dir=None` with no bytes is plaintext.
"""

from __future__ import annotations

from pathlib import Path

import grpc


class SecretMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                     grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <secret>` to every call, as services/agents/client.py does."""

    def __init__(self, secret: str):
        self.metadata = (("authorization", f"Bearer {secret}"),)

    def _details(self, details):
        return details._replace(metadata=tuple(details.metadata or ()) + self.metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


def agent_channel(address: str, *, certs_dir: Path | None = None, secret: str | None = None,
                  ca: bytes | None = None, cert: bytes | None = None, key: bytes | None = None,
                  client_cert: bool = True) -> grpc.Channel:
    """A channel to the agent; `client_cert=False` presents no client certificate."""
    if certs_dir is not None:
        certs_dir = Path(certs_dir)
        ca = ca or (certs_dir / "ca.pem").read_bytes()
        if client_cert:
            cert = cert or (certs_dir / "control-plane.pem").read_bytes()
            key = key or (certs_dir / "control-plane-key.pem").read_bytes()
    if ca is None:
        channel = grpc.insecure_channel(address)
    else:
        creds = grpc.ssl_channel_credentials(root_certificates=ca,
                                             private_key=key if client_cert else None,
                                             certificate_chain=cert if client_cert else None)
        channel = grpc.secure_channel(address, creds)
    if secret:
        channel = grpc.intercept_channel(channel, SecretMetadata(secret))
    return channel
