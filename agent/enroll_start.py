"""Enrollment at agent start: `tugboat ... --ca-hash sha256:...` on a machine with no certificates.

Kept out of agent.main so the entry point only hooks it in. With certificates already in the
certs folder (an agent enrolled before and started again with the same join command) nothing is
done here: the agent serves with them, and the old flow (agent.server) tries the token once more
and says it is used.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from cryptography import x509

from agent import enroll
from agent.config import AgentConfig
from agent.trust import CERT_FILES, TrustError, resolve_secret
from common import pki

log = logging.getLogger(__name__)

CA_HASH_ENV = "TUGBOAT_CA_HASH"


def enroll_if_asked(config: AgentConfig, ca_hash: str | None, environ=None) -> tuple[AgentConfig, str]:
    """(the config to serve with, "" or why enrollment was refused). After an enrollment the
    config's join token is cleared: it is used, and the certificates are in place."""
    environ = os.environ if environ is None else environ
    ca_hash = (ca_hash or environ.get(CA_HASH_ENV, "")).strip()
    if not ca_hash:
        return config, ""
    if config.insecure:
        return config, "--ca-hash enrolls for mutual TLS; it cannot be used with --insecure"
    if not (config.join and config.join_token):
        return config, "--ca-hash needs --join API_ADDRESS and a join token (the join command has both)"
    certs = Path(config.certs_dir)
    if any((certs / name).exists() for name in CERT_FILES):
        _check_existing_ca(certs, ca_hash)
        return config, ""
    try:
        secret = resolve_secret(config.secret, config.env_file)
        port = config.port
        address = enroll.advertised_address(config.host, port) if port else ""
        enroll.enroll_with_csr(config.join, config.join_token, ca_hash, secret, address, certs)
    except (enroll.EnrollError, TrustError) as exc:
        return config, str(exc)
    return dataclasses.replace(config, join_token=""), ""


def _check_existing_ca(certs: Path, ca_hash: str) -> None:
    """Warns when the CA this agent already trusts is not the one the join command names: the
    agent serves with what it has, but the control plane that printed the command may not be
    able to call it."""
    try:
        expected = pki.parse_fingerprint(ca_hash)
        have = {pki.fingerprint(c) for c in x509.load_pem_x509_certificates((certs / "ca.pem").read_bytes())}
    except (OSError, ValueError):
        return
    if expected not in have:
        log.warning("the certificates in %s are from another CA than the join command's %s: serving "
                    "with them anyway (remove them to enroll with this control plane)", certs, expected)
