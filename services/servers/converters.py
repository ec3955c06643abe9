"""Server messages' enrollment fields: the CA fingerprint of a join command, an issued certificate."""

from __future__ import annotations

from serversinc.v1 import server_service_pb2

from services.core.errors import FailedPrecondition
from services.servers.issuer import AgentIssuer


def join_command(address: str, api: str, join_token: str) -> str:
    """The command that enrolls a new server's agent. The token goes in the environment
    (TUGBOAT_JOIN_TOKEN, which the agent reads), not in an argument: process arguments are
    readable by every user of the machine (`ps`) while the agent runs."""
    return f"TUGBOAT_JOIN_TOKEN={join_token} tugboat --listen {address} --join {api}"


def add_ca_fingerprint(msg: server_service_pb2.Server, issuer: AgentIssuer | None) -> None:
    """Puts the platform CA's fingerprint in `msg` and `--ca-hash` in its join command, so the
    command alone enrolls the agent; nothing when this control plane has no CA."""
    if issuer is None:
        return
    try:
        msg.ca_fingerprint = issuer.fingerprint()
        issuer.ca()  # without the CA's key nothing can be signed: the agent needs copied certificates
    except (FailedPrecondition, OSError, ValueError):
        return
    if msg.join_command:
        msg.join_command += f" --ca-hash {msg.ca_fingerprint}"


def with_certificate(msg: server_service_pb2.Server, issued: list) -> server_service_pb2.Server:
    """`msg` with the certificate RegisterServer just issued (services.servers.issuer.Issued)."""
    if issued:
        msg.certificate_pem, msg.ca_certificate_pem = issued[0].certificate_pem, issued[0].ca_pem
    return msg
