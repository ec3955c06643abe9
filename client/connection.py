"""Where the control plane is, how to authenticate to it, and the channel and stubs to reach it.

All channel and credential handling lives in this one module so that TLS (and any later change to
authentication) is added in one place; the CLI, the webhook bridge and the dashboard only ever ask
for a `Connection`'s stubs. The address and token file defaults are common.defaults'.
"""

from __future__ import annotations

import collections
import os

import grpc

from serversinc.v1 import (
    api_token_service_pb2_grpc,
    app_service_pb2_grpc,
    deployment_service_pb2_grpc,
    git_service_pb2_grpc,
    server_service_pb2_grpc,
)

from common.defaults import API_ENV, DEFAULT_API, TOKEN_ENV, TOKEN_FILE, serversinc_home

# Unary calls get a deadline so that a wedged control plane cannot hang the CLI forever;
# git look-ups reach remote repositories and may legitimately take a while, hence the generous value.
# Streams (watch, logs --follow) have none: they are meant to last.
UNARY_TIMEOUT_SECONDS = 120.0


def resolve_address(flag: str | None, environ: dict | None = None) -> str:
    """--api wins, then $SERVERSINC_API, then the local default the run script listens on."""
    environ = os.environ if environ is None else environ
    return flag or environ.get(API_ENV) or DEFAULT_API


def load_token(environ: dict | None = None) -> str | None:
    """$SERVERSINC_TOKEN, else the api-token file in the serversinc home, else None (no auth)."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = serversinc_home(environ) / TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None
    return token or None


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: a bearer token when one is configured."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    """A mutable-by-copy ClientCallDetails: gRPC's own is opaque, interceptors must build their own."""


class _DefaultsInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds the auth metadata to every call and a deadline to unary calls, so call sites stay plain."""

    def __init__(self, metadata: tuple[tuple[str, str], ...], unary_timeout: float | None):
        self._metadata = metadata
        self._unary_timeout = unary_timeout

    def _details(self, details, timeout):
        metadata = list(details.metadata or ()) + list(self._metadata)
        return _CallDetails(
            details.method,
            details.timeout if details.timeout is not None else timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details, self._unary_timeout), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details, None), request)


class Connection:
    """A lazily opened channel to the control plane and its service stubs."""

    def __init__(self, address: str, token: str | None = None, unary_timeout: float | None = UNARY_TIMEOUT_SECONDS):
        self.address = address
        self.token = token
        self._unary_timeout = unary_timeout
        self._channel: grpc.Channel | None = None

    @classmethod
    def from_env(cls, api_flag: str | None = None) -> "Connection":
        return cls(resolve_address(api_flag), load_token())

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            # Plaintext for now; TLS credentials (grpc.secure_channel) go here when the API gets them.
            raw = grpc.insecure_channel(self.address)
            self._channel = grpc.intercept_channel(
                raw, _DefaultsInterceptor(auth_metadata(self.token), self._unary_timeout)
            )
        return self._channel

    @property
    def apps(self) -> app_service_pb2_grpc.AppServiceStub:
        return app_service_pb2_grpc.AppServiceStub(self.channel)

    @property
    def deployments(self) -> deployment_service_pb2_grpc.DeploymentServiceStub:
        return deployment_service_pb2_grpc.DeploymentServiceStub(self.channel)

    @property
    def git(self) -> git_service_pb2_grpc.GitServiceStub:
        return git_service_pb2_grpc.GitServiceStub(self.channel)

    @property
    def servers(self) -> server_service_pb2_grpc.ServerServiceStub:
        return server_service_pb2_grpc.ServerServiceStub(self.channel)

    @property
    def tokens(self) -> api_token_service_pb2_grpc.ApiTokenServiceStub:
        return api_token_service_pb2_grpc.ApiTokenServiceStub(self.channel)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
