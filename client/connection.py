"""Where the control plane is, how to authenticate to it, and the channel and stubs to reach it.

All channel and credential handling lives in this one module so that TLS (and any later change to
authentication) is added in one place; the CLI, the webhook bridge and the dashboard only ever ask
for a `Connection`'s stubs. The address and token file defaults are common.defaults'.

The address may list several API replicas (`host:port,host:port`, see client.addresses): the
channel connects to the first that answers. A call that fails with UNAVAILABLE is sent again (once,
by gRPC's retry policy, which then reconnects to the next replica that answers) only when it is a
read — Get, List, Watch, Stream or Resolve — because repeating it changes nothing; a streaming read
is retried only before its first response arrives (gRPC's commit point), after which the caller
resumes it itself (cli/watch.py with after_seq). A write that fails with UNAVAILABLE is never sent
again: it may have reached a replica that died before it answered.
"""

from __future__ import annotations

import collections
import json
import os

import grpc

from serversinc.v1 import (
    api_token_service_pb2,
    api_token_service_pb2_grpc,
    app_service_pb2,
    app_service_pb2_grpc,
    deployment_service_pb2,
    deployment_service_pb2_grpc,
    git_service_pb2,
    git_service_pb2_grpc,
    server_service_pb2,
    server_service_pb2_grpc,
)

from client.addresses import channel_target, parse_addresses
from common.defaults import API_ENV, DEFAULT_API, TOKEN_ENV, TOKEN_FILE, serversinc_home

# Unary calls get a deadline so that a wedged control plane cannot hang the CLI forever;
# git look-ups reach remote repositories and may legitimately take a while, hence the generous value.
# Streams (watch, logs --follow) have none: they are meant to last.
UNARY_TIMEOUT_SECONDS = 120.0

# Methods whose names say they only read (AIP-131/132 Get and List, the event and log streams, a git
# look-up): repeating one after an UNAVAILABLE changes nothing on the server.
READ_PREFIXES = ("Get", "List", "Watch", "Stream", "Resolve")
_API_MODULES = (api_token_service_pb2, app_service_pb2, deployment_service_pb2, git_service_pb2, server_service_pb2)
# One retry is enough to reach another replica: the failed attempt's broken connection makes the
# channel reconnect, trying every address in order. More would only repeat a server's own UNAVAILABLE.
RETRY_POLICY = {"maxAttempts": 2, "initialBackoff": "0.05s", "maxBackoff": "0.5s", "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"]}


def is_read(method: str) -> bool:
    return method.startswith(READ_PREFIXES)


def read_methods(modules=_API_MODULES) -> list[dict[str, str]]:
    """Every read method of the public API, as service-config names {"service", "method"}."""
    return [{"service": service.full_name, "method": method.name}
            for module in modules for service in module.DESCRIPTOR.services_by_name.values()
            for method in service.methods if is_read(method.name)]


def service_config() -> str:
    """The channel's service config: the retry policy, for reads only."""
    return json.dumps({"methodConfig": [{"name": read_methods(), "retryPolicy": RETRY_POLICY}]})


def resolve_address(flag: str | None, environ: dict | None = None) -> str:
    """--api wins, then $SERVERSINC_API, then the local default the run script listens on.
    The value may list several replicas (`host:port,host:port`)."""
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
    """A lazily opened channel to the control plane (one or several replicas) and its service stubs.

    Raises client.addresses.AddressError at once for an address setting that cannot be read."""

    def __init__(self, address: str, token: str | None = None, unary_timeout: float | None = UNARY_TIMEOUT_SECONDS):
        self.addresses = parse_addresses(address)
        self.address = ",".join(self.addresses)
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
            # With TLS, a list of replicas will also need grpc.ssl_target_name_override (the target
            # then names IP addresses, not the host name in the certificate).
            raw = grpc.insecure_channel(
                channel_target(self.address),
                options=[("grpc.enable_retries", 1), ("grpc.service_config", service_config())])
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
