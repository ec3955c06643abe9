"""Enrollment: trade a one-time join token for this agent's registration with the control plane.

`tugboat --listen ADDR --join API --join-token TOKEN` (the join_command CreateServer prints) calls
`ServerService.RegisterServer(join_token, agent_secret, address)` once the agent serves. The call
goes over TLS, verifying the API's certificate with the agent's own `ca.pem` (the platform CA it
already trusts for mutual TLS), because it carries the token and the secret; plaintext only when
`SERVERSINC_API_PLAINTEXT=1` asks for it (common.api_tls). Neither the token nor the secret is
ever logged.
"""

from __future__ import annotations

import logging
import time
from enum import Enum
from pathlib import Path

import grpc

from common.api_tls import ApiTlsError, ca_path, plaintext_requested, read_ca

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
_WILDCARDS = {"", "0.0.0.0", "::", "[::]"}


class Outcome(str, Enum):
    REGISTERED = "registered"
    REFUSED = "refused"          # token unknown, used or expired (FAILED_PRECONDITION)
    FAILED = "failed"            # anything else (unreachable API, invalid argument, ...)


def advertised_address(host: str, port: int) -> str:
    """The address to give the control plane, or "" (keep what CreateServer was given) when we
    listen on a wildcard address that nobody can dial."""
    if host in _WILDCARDS:
        return ""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def api_channel(api: str, ca_file: Path | None = None) -> grpc.Channel:
    """A channel to the control plane at `api`: TLS verified with `ca_file` (default: the clients'
    CA, $SERVERSINC_CA or the home's certs/ca.pem), or plaintext when
    SERVERSINC_API_PLAINTEXT asks for it. ApiTlsError when the CA cannot be read."""
    if plaintext_requested():
        log.warning("registering with %s over PLAINTEXT gRPC (SERVERSINC_API_PLAINTEXT): the join token "
                    "and this agent's secret cross the network in clear", api)
        return grpc.insecure_channel(api)
    return grpc.secure_channel(api, grpc.ssl_channel_credentials(root_certificates=read_ca(ca_file or ca_path())))


def register(api: str, join_token: str, secret: str, address: str, *, ca_file: Path | None = None,
             retry_seconds: float = RETRY_SECONDS, channel: grpc.Channel | None = None) -> Outcome:
    """Call RegisterServer, retrying while the API is unreachable (it may still be starting).
    Without `channel`, one is opened to `api` with api_channel(api, ca_file)."""
    from serversinc.v1 import server_service_pb2, server_service_pb2_grpc

    own = channel is None
    if own:
        try:
            channel = api_channel(api, ca_file)
        except ApiTlsError as err:
            log.error("could not register with the control plane at %s: %s; serving anyway", api, err)
            return Outcome.FAILED
    try:
        stub = server_service_pb2_grpc.ServerServiceStub(channel)
        request = server_service_pb2.RegisterServerRequest(join_token=join_token, agent_secret=secret,
                                                           address=address)
        deadline = time.monotonic() + retry_seconds
        delay = 0.2
        while True:
            try:
                timeout = max(1.0, min(10.0, deadline - time.monotonic()))
                server = stub.RegisterServer(request, timeout=timeout, wait_for_ready=True)
            except grpc.RpcError as err:
                code = err.code()
                if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                        and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    log.warning("join token refused by %s (%s): this agent is already registered or "
                                "the token is stale; serving with the secret it has (create a new "
                                "token with 'serversinc servers add' to enroll again)",
                                api, err.details())
                    return Outcome.REFUSED
                log.error("could not register with the control plane at %s: %s %s; serving anyway",
                          api, code.name, err.details())
                return Outcome.FAILED
            log.info("registered with the control plane at %s as server %r (address %s)", api,
                     server.name, server.address)
            return Outcome.REGISTERED
    finally:
        if own:
            channel.close()
