"""Certificates for mutual TLS between the control plane and Tugboat agents.

    python scripts/certs.py --out .serversinc/certs [--agent-host NAME_OR_IP ...] [--days N] [--force]

makes, when missing (an existing file is never overwritten without --force):

- ``ca.pem`` / ``ca-key.pem``: a private certificate authority. Both sides trust only it.
- ``agent.pem`` / ``agent-key.pem``: the agent's server certificate (serverAuth), valid for
  ``localhost``, ``127.0.0.1`` and every ``--agent-host`` (the host part of the address the
  control plane dials; a name or an IP address).
- ``control-plane.pem`` / ``control-plane-key.pem``: the control plane's client certificate
  (clientAuth). The agent refuses, in the TLS handshake, any client without a certificate
  issued by ``ca.pem``.

Private keys are written with mode 0600 (temp file + rename, so a reader never sees half a key).

The agent reads ``ca.pem``, ``agent.pem`` and ``agent-key.pem``; the control plane reads
``ca.pem``, ``control-plane.pem`` and ``control-plane-key.pem``. On more than one machine, copy
only those files; ``ca-key.pem`` stays where certificates are issued.

Rotation
--------
- Leaf certificates (agent or control plane): delete the pair (``agent.pem`` and
  ``agent-key.pem``, say) and run the script again; a new leaf from the same CA is trusted by
  the other side as is. Both sides read their certificates at start: restart the agent to pick
  up a new ``agent.pem``, the control plane for a new ``control-plane.pem``. (``--force``
  replaces everything, the CA included.) An existing ``agent.pem`` that lacks a requested
  ``--agent-host`` is reported, not replaced.
- The CA: make a new CA in another directory (``--out new``), then for a transition put BOTH CA certificates in
  ``ca.pem`` (``cat old/ca.pem new/ca.pem > ca.pem``) on every side and restart: leaves of either
  CA are accepted. Re-issue every leaf from the new CA, restart, then remove the old CA from
  ``ca.pem`` and restart once more.

The functions (``make_ca``, ``make_leaf``, ``write_pem``, ``ensure_certs``) are importable so
tests can mint throwaway CAs and expired or not-yet-valid certificates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.files import write_atomic

DEFAULT_DAYS = 825
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
SERVER = "server"
CLIENT = "client"


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key (objects; `cert_pem` / `key_pem` give bytes)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Serversinc"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _window(days: int, not_before: dt.datetime | None, not_after: dt.datetime | None
            ) -> tuple[dt.datetime, dt.datetime]:
    start = not_before or _now() - dt.timedelta(minutes=5)  # small allowance for clock skew
    return start, not_after or start + dt.timedelta(days=days)


def make_ca(common_name: str = "Serversinc agents CA", *, days: int = 3650,
            not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Pair:
    """A self-signed CA that may only issue leaf certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window(days, not_before, not_after)
    name = _name(common_name)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Pair(cert, key)


def _san(hosts) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    seen = set()
    for host in hosts:
        host = host.strip()
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def make_leaf(ca: Pair, common_name: str, *, usage: str = SERVER, hosts=(), days: int = DEFAULT_DAYS,
              not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> Pair:
    """A certificate signed by `ca`: `usage` SERVER (serverAuth, SANs from `hosts`) or CLIENT
    (clientAuth). `not_before` / `not_after` override the validity window (tests)."""
    if usage not in (SERVER, CLIENT):
        raise ValueError(f"usage must be {SERVER!r} or {CLIENT!r}")
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window(days, not_before, not_after)
    eku = ExtendedKeyUsageOID.SERVER_AUTH if usage == SERVER else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=True,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False))
    if usage == SERVER or hosts:
        builder = builder.add_extension(_san(hosts or DEFAULT_HOSTS), critical=False)
    return Pair(builder.sign(ca.key, hashes.SHA256()), key)


def write_pem(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write atomically; 0600 when `private` (a key), else 0644 (a certificate anyone may read)."""
    write_atomic(path, data, mode=0o600 if private else 0o644)


def write_pair(out: Path, stem: str, pair: Pair) -> None:
    write_pem(Path(out) / f"{stem}-key.pem", pair.key_pem, private=True)
    write_pem(Path(out) / f"{stem}.pem", pair.cert_pem)


def load_pair(out: Path, stem: str) -> Pair:
    cert = x509.load_pem_x509_certificate((Path(out) / f"{stem}.pem").read_bytes())
    key = serialization.load_pem_private_key((Path(out) / f"{stem}-key.pem").read_bytes(), None)
    return Pair(cert, key)


def uncovered_hosts(cert: x509.Certificate, hosts) -> list[str]:
    """The names / IPs in `hosts` that `cert`'s SANs do not list."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [h for h in hosts if h]
    names = set(san.get_values_for_type(x509.DNSName))
    ips = set(san.get_values_for_type(x509.IPAddress))
    missing = []
    for host in (h.strip() for h in hosts):
        try:
            covered = ipaddress.ip_address(host) in ips
        except ValueError:
            covered = host in names
        if host and not covered:
            missing.append(host)
    return missing


def _exists(out: Path, stem: str) -> bool:
    return (out / f"{stem}.pem").exists() and (out / f"{stem}-key.pem").exists()


def ensure_certs(out: str | Path, *, agent_hosts=(), days: int = DEFAULT_DAYS,
                 force: bool = False) -> list[str]:
    """Make whatever is missing in `out` (everything with `force`); returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    written: list[str] = []
    if force or not _exists(out, "ca"):
        ca = make_ca()
        write_pair(out, "ca", ca)
        written += ["ca.pem", "ca-key.pem"]
        force = True  # leaves of an old CA would no longer verify
    else:
        ca = load_pair(out, "ca")
    if force or not _exists(out, "agent"):
        hosts = [*DEFAULT_HOSTS, *agent_hosts]
        write_pair(out, "agent", make_leaf(ca, "tugboat-agent", usage=SERVER, hosts=hosts, days=days))
        written += ["agent.pem", "agent-key.pem"]
    else:
        missing = uncovered_hosts(load_pair(out, "agent").cert, agent_hosts)
        if missing:
            print(f"warning: {out / 'agent.pem'} does not cover {', '.join(missing)}; delete "
                  "agent.pem and agent-key.pem and run again to re-issue it from the same CA",
                  file=sys.stderr)
    if force or not _exists(out, "control-plane"):
        write_pair(out, "control-plane", make_leaf(ca, "serversinc-control-plane", usage=CLIENT, days=days))
        written += ["control-plane.pem", "control-plane-key.pem"]
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Make the CA and certificates for agent mutual TLS.")
    parser.add_argument("--out", required=True, help="folder for the PEM files (e.g. .serversinc/certs)")
    parser.add_argument("--agent-host", action="append", default=[], metavar="NAME_OR_IP",
                        help="extra name or IP in the agent certificate (repeatable); "
                             "localhost and 127.0.0.1 are always included")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="leaf certificate lifetime")
    parser.add_argument("--force", action="store_true",
                        help="replace existing files (a new CA and new leaf certificates)")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    written = ensure_certs(args.out, agent_hosts=args.agent_host, days=args.days, force=args.force)
    print(f"certificates in {args.out}: " + (", ".join(written) + " written" if written
                                              else "all present, nothing changed"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
