"""The agent's own certificate renewal, over the agent's existing mutual-TLS channel and secret
(TugboatService.PrepareAgentCertificate / InstallAgentCertificate); plain values out."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
from tugboat.v1 import tugboat_pb2 as pb

from services.agents.client import AgentClient
from services.agents.port import AgentError


def prepare(client: AgentClient, *, timeout: float = 15.0) -> str:
    """A CSR (PEM) for a new key the agent made and keeps (an agent just restarted is waited
    for briefly, one that is down fails with AgentUnavailable)."""
    client._connected()
    try:
        return client.stub.PrepareAgentCertificate(pb.PrepareAgentCertificateRequest(), timeout=timeout,
                                                    metadata=client.metadata).csr_pem
    except grpc.RpcError as err:
        raise client._error(err) from None


def install(client: AgentClient, certificate_pem: str, *, timeout: float = 15.0) -> tuple[str, datetime]:
    """(serial, expiry) of the certificate the agent now serves new connections with. An
    AgentError carries the agent's reason when it refuses it."""
    try:
        r = client.stub.InstallAgentCertificate(pb.InstallAgentCertificateRequest(certificate_pem=certificate_pem),
                                                timeout=timeout, metadata=client.metadata)
    except grpc.RpcError as err:
        if err.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT):
            raise AgentError(f"{client.who} refused its new certificate: {err.details()}") from None
        raise client._error(err) from None
    return r.serial, r.expire_time.ToDatetime(tzinfo=timezone.utc)
