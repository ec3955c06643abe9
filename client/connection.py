"""Where the control plane is, how to authenticate to it, and the channel and stubs to reach it.

All channel and credential handling lives in this one module so that TLS (and any later change to
authentication) is added in one place; the CLI, the webhook bridge and the dashboard only ever ask
for a `Connection`'s stubs. The address and token file defaults are common.defaults'.

The channel is TLS, verified with the platform CA (common.api_tls: `$SERVERSINC_CA`, else
`$SERVERSINC_HOME/certs/ca.pem`); plaintext only when `SERVERSINC_API_PLAINTEXT=1` asks for it.
A CA that cannot be read is a `TrustError` (an AddressError: the connection setting cannot be
used) raised by `from_env`, before any call.

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

from client.addresses import AddressError, channel_target, is_list, parse_addresses
from common.api_tls import TLS_NAME, ApiTlsError, ca_path, plaintext_requested, read_ca
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


class TrustError(AddressError):
    """The CA that verifies the control plane cannot be read; the message says what to do."""


def load_root_ca(environ: dict | None = None) -> bytes | None:
    """The CA certificate (PEM) to verify the API with, or None when plaintext is asked for
    ($SERVERSINC_API_PLAINTEXT). TrustError when the CA file cannot be read."""
    environ = os.environ if environ is None else environ
    if plaintext_requested(environ):
        return None
    try:
        return read_ca(ca_path(environ))
    except ApiTlsError as err:
        raise TrustError(str(err)) from None


def open_channel(address: str, root_ca: bytes | None, options=()) -> grpc.Channel:
    """A raw channel to the API setting `address` (one address or a list): TLS verified with
    `root_ca`, or plaintext when it is None.

    A list is one channel over IP addresses with one name to check, so it checks common.api_tls's
    TLS_NAME, which every API certificate carries; a single address checks its own host name or IP."""
    target = channel_target(address)
    options = list(options)
    if root_ca is None:
        return grpc.insecure_channel(target, options=options)
    if is_list(address):
        options.append(("grpc.ssl_target_name_override", TLS_NAME))
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=root_ca), options=options)


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

    _ENV = object()  # root_ca not given: read it (or the plaintext setting) from the environment

    def __init__(self, address: str, token: str | None = None, unary_timeout: float | None = UNARY_TIMEOUT_SECONDS,
                 root_ca: bytes | None | object = _ENV):
        """`root_ca`: the CA's PEM to verify the API with, None for plaintext; by default
        load_root_ca() when the channel opens."""
        self.addresses = parse_addresses(address)
        self.address = ",".join(self.addresses)
        self.token = token
        self._root_ca = root_ca
        self._unary_timeout = unary_timeout
        self._channel: grpc.Channel | None = None

    @classmethod
    def from_env(cls, api_flag: str | None = None) -> "Connection":
        address = resolve_address(api_flag)
        parse_addresses(address)  # an unreadable address is reported before a missing CA
        return cls(address, load_token(), root_ca=load_root_ca())

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            if self._root_ca is Connection._ENV:
                self._root_ca = load_root_ca()
            raw = open_channel(self.address, self._root_ca,
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
