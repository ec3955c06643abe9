"""The agent's own serving certificate, renewed in place: new connections get the new one, no restart.

gRPC asks `fetch` at every TLS handshake (dynamic server credentials); it returns a new
configuration only after `install` put a new certificate in service, so connections already open
keep theirs and every new one gets the new pair. The files in the certs folder (agent.pem,
agent-key.pem, ca.pem) stay the truth: an agent that restarts serves what was installed last.

Renewal is two calls from the control plane (servers rotate-cert): `prepare` makes a new key and
returns a CSR for it; the key stays in this process until `install` receives a certificate for it
(then it is written, 0600). The key never leaves the agent, and no key material is logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509

from agent.trust import read_certs
from common import pki

log = logging.getLogger(__name__)

CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "agent.pem", "agent-key.pem"
COMMON_NAME = "tugboat-agent"


class NoPendingKey(Exception):
    """install without a prepare before it (or after another install used the key)."""


class CertificateMismatch(Exception):
    """The certificate is not for the pending key."""


class UntrustedCertificate(ValueError):
    """The certificate does not parse, or is not issued by the CA the agent trusts."""


@dataclass(frozen=True)
class Installed:
    serial: str
    not_after: dt.datetime


def write_certs(certs_dir: Path, ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
    """The three files, each atomic: the key (0600) first, then its certificate, then the CA."""
    certs_dir = Path(certs_dir)
    certs_dir.mkdir(parents=True, exist_ok=True)
    certs_dir.chmod(0o700)
    pki.write_pem(certs_dir / KEY_FILE, key_pem, private=True)
    pki.write_pem(certs_dir / CERT_FILE, cert_pem)
    pki.write_pem(certs_dir / CA_FILE, ca_pem)


class ServingCertificate:
    """The certificate the agent serves with, from `certs_dir` (see module docstring)."""

    def __init__(self, certs_dir: Path) -> None:
        self.dir = Path(certs_dir)
        self._lock = threading.Lock()
        self._pending = None           # private key made by prepare()
        self._version = 0              # bumped by install()
        self._fetched = 0              # the version gRPC last received

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        ca, cert, key = read_certs(self.dir)
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def credentials(self) -> grpc.ServerCredentials:
        """Mutual TLS (client certificates from ca.pem required) that follows `install`.
        TrustError when the files are missing."""
        return grpc.dynamic_ssl_server_credentials(self._configuration(), self._fetch,
                                                   require_client_authentication=True)

    def _fetch(self):
        with self._lock:
            if self._fetched == self._version:
                return None
            self._fetched = self._version
        try:
            return self._configuration()
        except Exception:  # noqa: BLE001 - keep serving the one in service; say why
            log.exception("cannot read the new certificate in %s; serving the previous one", self.dir)
            return None

    def prepare(self) -> bytes:
        """A CSR (PEM) for a new key kept here until install."""
        key = pki.new_key()
        with self._lock:
            self._pending = key
        return pki.make_csr(key, COMMON_NAME)

    def install(self, cert_pem: bytes) -> Installed:
        """Writes the certificate issued for the pending key and serves it from the next
        handshake on. NoPendingKey, CertificateMismatch and UntrustedCertificate leave everything as it was."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise UntrustedCertificate("the certificate is not PEM X.509") from None
        with self._lock:
            key = self._pending
            if key is None:
                raise NoPendingKey("no renewal is pending on this agent: ask for a CSR first "
                                   "(PrepareAgentCertificate)")
            if not pki.same_key(cert, key):
                raise CertificateMismatch("the certificate is not for the key this agent made last")
            ca_pem = (self.dir / CA_FILE).read_bytes()
            cas = x509.load_pem_x509_certificates(ca_pem)
            if not any(pki.issued_by(cert, ca) for ca in cas):
                raise UntrustedCertificate("the certificate is not issued by the CA this agent trusts")
            write_certs(self.dir, ca_pem, cert.public_bytes(pki.serialization.Encoding.PEM), pki.key_pem(key))
            self._pending = None
            self._version += 1
        installed = Installed(pki.serial_hex(cert), cert.not_valid_after_utc)
        log.info("new serving certificate in service (serial %s, expires %s)", installed.serial,
                 installed.not_after.isoformat())
        return installed
