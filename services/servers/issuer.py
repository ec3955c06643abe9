"""The control plane's side of agent certificates: the platform CA signs agents' CSRs.

The CA is the one in the certs folder (ca.pem, ca-key.pem: scripts/certs.py or run.sh made them),
the same CA the agents trust the control plane's client certificate with, so an agent enrolled by
CSR and one whose certificates were copied by hand are called the same way. The certificate names
only the host of the server's address: what the control plane dials and checks. No gRPC here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from common import pki
from common.api_tls import TLS_NAME
from services.core.errors import FailedPrecondition, InvalidArgument

ISSUE_FAILED = "CERTIFICATE_ISSUE_FAILED"


@dataclass(frozen=True)
class Issued:
    certificate_pem: str
    ca_pem: str
    serial: str
    not_after: datetime


def address_host(address: str) -> str:
    """The host of "host:port" (brackets off an IPv6 literal), as a certificate names it."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


class AgentIssuer:
    """Signs agent CSRs with the CA in `certs_dir` (see module docstring)."""

    def __init__(self, certs_dir: Path, days: int = pki.AGENT_DAYS) -> None:
        self.dir = Path(certs_dir)
        self.days = days

    def _ca_file(self) -> bytes:
        try:
            return (self.dir / "ca.pem").read_bytes()
        except OSError:
            raise FailedPrecondition(f"the control plane has no CA certificate ({self.dir / 'ca.pem'}): "
                                     "run scripts/certs.py", reason=ISSUE_FAILED) from None

    def ca(self) -> pki.Pair:
        """The signing CA: the certificate in ca.pem (which may hold two during a CA change) whose
        key is ca-key.pem."""
        try:
            key = pki.serialization.load_pem_private_key((self.dir / "ca-key.pem").read_bytes(), None)
        except (OSError, ValueError):
            raise FailedPrecondition(
                f"the control plane cannot issue agent certificates: no CA key at {self.dir / 'ca-key.pem'} "
                "(it stays where certificates are issued; run the API there, or copy the agent's "
                "certificates by hand with scripts/certs.py)", reason=ISSUE_FAILED) from None
        for cert in x509.load_pem_x509_certificates(self._ca_file()):
            if pki.same_key(cert, key):
                return pki.Pair(cert, key)
        raise FailedPrecondition(f"ca-key.pem in {self.dir} belongs to no certificate of ca.pem",
                                 reason=ISSUE_FAILED)

    def fingerprint(self) -> str:
        """The fingerprint a join command carries: of the signing CA when its key is here, else
        of the first CA in ca.pem (what the API presents first)."""
        try:
            return pki.fingerprint(self.ca().cert)
        except FailedPrecondition:
            return pki.fingerprint(x509.load_pem_x509_certificates(self._ca_file())[0])

    def sign(self, csr_pem: str, server_name: str, address: str) -> Issued:
        """A certificate for the CSR's key naming the host of `address`. InvalidArgument for a
        CSR that cannot be signed (field csr_pem) or a host an agent may not be named."""
        host = address_host(address)
        if not host or host == TLS_NAME:
            raise InvalidArgument(f"an agent certificate cannot name {host or 'an empty host'!r}",
                                  field="address")
        ca = self.ca()
        try:
            cert = pki.sign_csr(ca, csr_pem, common_name=f"tugboat-agent-{server_name}", hosts=[host],
                                days=self.days)
        except pki.CsrError as err:
            raise InvalidArgument(str(err), field="csr_pem", reason="CSR_INVALID") from None
        return Issued(cert.public_bytes(pki.serialization.Encoding.PEM).decode(), self._ca_file().decode(),
                      pki.serial_hex(cert), cert.not_valid_after_utc)
