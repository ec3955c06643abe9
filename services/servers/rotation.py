"""Renewing a server's agent certificate without downtime (servers rotate-cert).

The agent makes the key and the CSR (the key never leaves it), the platform CA signs it here
(services.servers.issuer), the agent serves new connections with the new certificate at once
(agent.serving_cert), and only then is the new serial recorded. A failure at any step leaves the
agent serving its old certificate, still valid, and the record unchanged.
"""

from __future__ import annotations

from services.agents import agent_certs
from services.agents.port import AgentError, AgentTimeout, AgentUnavailable
from services.apps import repository as repo
from services.core.errors import FailedPrecondition, ServerNotFound, ServerUnreachable
from services.db.models import Server
from services.servers.issuer import ISSUE_FAILED
from services.servers.service import ServerService


def rotate_certificate(servers: ServerService, agents, name: str) -> Server:
    """`agents` is the platform's AgentDirectory. Returns the server with its new serial."""
    with servers.db.read() as s:
        server = repo.get_server(s, name)
    if server is None:
        raise ServerNotFound(f"server {name!r} not found")
    if servers.issuer is None:
        raise FailedPrecondition("this control plane issues no agent certificates (no CA)", reason=ISSUE_FAILED)
    servers.issuer.ca()  # no CA key: say so before the agent makes a key for nothing
    client = agents.for_server(name)
    try:
        csr = agent_certs.prepare(client)
        issued = servers.issuer.sign(csr, name, server.address)
        serial, not_after = agent_certs.install(client, issued.certificate_pem)
    except (AgentUnavailable, AgentTimeout) as err:
        raise ServerUnreachable(str(err)) from None
    except AgentError as err:
        raise FailedPrecondition(str(err), reason=ISSUE_FAILED) from None
    return servers.record_certificate(name, serial, not_after)
